-- Events and active users by day of week (0 = Monday) and hour, in the chosen time zone,
-- from the hourly rollup (which keeps MYSETLIST_HOURLY_METRICS_RETENTION_HOURS, 14 days by
-- default: a longer range shows what the rollup still holds; `covers_from` says from when).
WITH hours AS (
  SELECT hour AT TIME ZONE %(tz)s AS local_hour, event_count, unique_users
  FROM analytics.hourly_real_time_metrics
  WHERE event_type = '*' AND hour >= %(since)s
)
SELECT json_build_object(
  'cells', (SELECT coalesce(json_agg(json_build_object(
                     'dow', dow, 'hour', hr, 'events', events, 'users', users)
                   ORDER BY dow, hr), '[]')
            FROM (SELECT extract(isodow FROM local_hour)::int - 1 AS dow,
                         extract(hour FROM local_hour)::int AS hr,
                         sum(event_count) AS events, sum(unique_users) AS users
                  FROM hours GROUP BY 1, 2) AS c),
  'covers_from', (SELECT min(hour) FROM analytics.hourly_real_time_metrics
                  WHERE event_type = '*' AND hour >= %(since)s),
  'timezone', %(tz)s::text
) AS data
