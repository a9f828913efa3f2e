-- The active version of model %(name)s and its artifact (to score with it).
SELECT version, artifact FROM analytics.ml_models WHERE name = %(name)s AND active
