-- The active version of the setlist ranker (id and training time tell whether a cached
-- copy is current).
SELECT id, version, trained_at FROM analytics.ml_models WHERE name = %(name)s AND active
