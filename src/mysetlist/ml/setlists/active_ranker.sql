-- The active version of the setlist ranker (its id tells whether a cached copy is current).
SELECT id, version FROM analytics.ml_models WHERE name = %(name)s AND active
