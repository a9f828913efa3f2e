-- The active version of model %(name)s, locked until the registration commits.
SELECT id, name, version, metrics FROM analytics.ml_models
WHERE name = %(name)s AND active
FOR UPDATE
