-- The first and last as-of days the user feature store holds.
SELECT min(as_of) AS first_day, max(as_of) AS last_day FROM analytics.ml_user_features
