-- The active version of model %(name)s, cheaply (the unique partial index): its id and
-- training time tell a process whether the copy it holds is still the active one.
SELECT id, version, trained_at FROM analytics.ml_models WHERE name = %(name)s AND active
