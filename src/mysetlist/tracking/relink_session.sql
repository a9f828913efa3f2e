-- Give a newly linked session's earlier anonymous events their user, and note the hours
-- rewritten (the hourly rollup revisits them).
WITH moved AS (
  UPDATE analytics.user_events e
  SET user_id = l.user_id
  FROM unnest(%(ids)s::text[], %(users)s::uuid[]) AS l(id, user_id)
  WHERE e.session_id = l.id AND e.user_id IS NULL
  RETURNING date_trunc('hour', e.created_at) AS hour, e.user_id
)
INSERT INTO analytics.event_relinks (hour, user_id)
SELECT DISTINCT hour, user_id FROM moved
