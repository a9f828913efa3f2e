-- A stored model archive with the erased user's rows removed.
UPDATE analytics.ml_models SET artifact = %(artifact)s WHERE id = %(id)s
