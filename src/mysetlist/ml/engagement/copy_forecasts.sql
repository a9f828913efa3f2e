COPY analytics.ml_engagement_forecasts (as_of, user_id, forecast_7d, last_week, model_version)
FROM STDIN
