UPDATE analytics.ml_models SET active = false WHERE id = %(id)s
