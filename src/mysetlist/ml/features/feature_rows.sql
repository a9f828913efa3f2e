-- The user features as of %(day)s (what a model scores; nothing after the day).
SELECT * FROM analytics.ml_user_features WHERE as_of = %(day)s ORDER BY user_id
