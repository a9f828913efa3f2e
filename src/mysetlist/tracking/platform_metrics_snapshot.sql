-- A snapshot of platform-wide figures into the public platform_metrics table.
INSERT INTO public.platform_metrics (metric_name, metric_value, dimensions, recorded_at)
SELECT name, value, jsonb_build_object('window', win), %(at)s
FROM (
  SELECT 'active_users' AS name, count(DISTINCT user_id)::float8 AS value, '5 minutes' AS win
  FROM analytics.user_events WHERE created_at >= %(at)s::timestamptz - interval '5 minutes'
  UNION ALL
  SELECT 'active_sessions', count(DISTINCT session_id)::float8, '5 minutes'
  FROM analytics.user_events WHERE created_at >= %(at)s::timestamptz - interval '5 minutes'
  UNION ALL
  SELECT 'events_this_hour', coalesce(sum(event_count), 0)::float8, 'current hour'
  FROM analytics.hourly_real_time_metrics
  WHERE hour = date_trunc('hour', %(at)s::timestamptz) AND event_type = '*'
  UNION ALL
  SELECT 'votes_this_hour', coalesce(sum(event_count), 0)::float8, 'current hour'
  FROM analytics.hourly_real_time_metrics
  WHERE hour = date_trunc('hour', %(at)s::timestamptz) AND event_type = 'vote'
  UNION ALL
  SELECT 'unique_users_this_hour', coalesce(sum(unique_users), 0)::float8, 'current hour'
  FROM analytics.hourly_real_time_metrics
  WHERE hour = date_trunc('hour', %(at)s::timestamptz) AND event_type = '*'
) s
