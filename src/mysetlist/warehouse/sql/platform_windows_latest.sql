-- WAU, MAU and stickiness for the latest loaded day only (the incremental run's today),
-- from user_behavior_warehouse.last_active_day: nobody is active after the latest day, so
-- "active on some day in d-29..d" is "last active on or after d-29". Same numbers as
-- platform_windows.sql, without scanning 30 days of daily_user_stats. Params: day.
UPDATE analytics.daily_platform_metrics m
SET wau = w.wau, mau = w.mau,
    stickiness = CASE WHEN w.mau > 0 THEN round(m.active_users::numeric / w.mau, 4) END
FROM (
  SELECT count(*) FILTER (WHERE last_active_day >= %(day)s::date - 6) AS wau,
         count(*) FILTER (WHERE last_active_day >= %(day)s::date - 29) AS mau
  FROM analytics.user_behavior_warehouse
) w
WHERE m.day = %(day)s;
