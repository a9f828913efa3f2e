DELETE FROM analytics.ml_churn_predictions WHERE as_of = %(day)s
