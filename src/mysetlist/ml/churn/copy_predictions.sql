COPY analytics.ml_churn_predictions
  (as_of, user_id, horizon_days, probability, risk_bucket, top_features, model_version)
FROM STDIN
