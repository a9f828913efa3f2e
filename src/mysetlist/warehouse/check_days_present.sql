-- Days in lo..hi without a daily_platform_metrics row (every loaded day has one).
SELECT d::date AS day
  FROM generate_series(%(lo)s::date, %(hi)s::date, interval '1 day') d
 WHERE NOT EXISTS (SELECT 1 FROM analytics.daily_platform_metrics m WHERE m.day = d::date)
 ORDER BY 1
