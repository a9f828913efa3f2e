-- Recompute every (hour, event_type) touched by events received in (since, upto], or whose
-- events got their user in that window (event_relinks): incremental by watermark,
-- idempotent (a re-run yields the same rows), late events included. event_type '*' is the
-- hour's total. Hours older than the retention are not rolled up.
WITH touched AS (
  SELECT date_trunc('hour', created_at) AS hour
  FROM analytics.user_events
  WHERE received_at > %(since)s AND received_at <= %(upto)s
    AND created_at >= %(oldest)s
  UNION
  SELECT hour
  FROM analytics.event_relinks
  WHERE relinked_at > %(since)s AND relinked_at <= %(upto)s AND hour >= %(oldest)s
),
agg AS (
  SELECT t.hour,
         CASE WHEN grouping(e.event_type) = 1 THEN '*' ELSE e.event_type END AS event_type,
         count(*) AS event_count,
         count(DISTINCT e.user_id) AS unique_users,
         count(DISTINCT e.session_id) AS unique_sessions,
         count(DISTINCT e.anonymous_id) FILTER (WHERE e.user_id IS NULL) AS unique_anonymous
  FROM touched t
  JOIN analytics.user_events e
    ON e.created_at >= t.hour AND e.created_at < t.hour + interval '1 hour'
  GROUP BY GROUPING SETS ((t.hour, e.event_type), (t.hour))
)
INSERT INTO analytics.hourly_real_time_metrics AS m
  (hour, event_type, event_count, unique_users, unique_sessions, unique_anonymous, updated_at)
SELECT hour, event_type, event_count, unique_users, unique_sessions, unique_anonymous, now()
FROM agg
ON CONFLICT (hour, event_type) DO UPDATE
SET event_count = EXCLUDED.event_count,
    unique_users = EXCLUDED.unique_users,
    unique_sessions = EXCLUDED.unique_sessions,
    unique_anonymous = EXCLUDED.unique_anonymous,
    updated_at = EXCLUDED.updated_at
