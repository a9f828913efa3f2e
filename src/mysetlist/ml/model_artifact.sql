SELECT artifact FROM analytics.ml_models WHERE id = %(id)s
