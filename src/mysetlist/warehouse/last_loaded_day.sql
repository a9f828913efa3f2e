-- The newest day the warehouse holds (windows reach forward up to it).
SELECT max(day) AS day FROM analytics.daily_platform_metrics
