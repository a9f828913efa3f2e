DELETE FROM analytics.ml_engagement_forecasts WHERE as_of = %(day)s
