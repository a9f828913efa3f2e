-- Give the earlier anonymous events of newly linked ids their user, and note the hours
-- rewritten (the hourly rollup revisits them). A template: group_commit.py names the
-- column the ids are matched on ({id_column}: anonymous_id or session_id), so each kind
-- uses its own index.
WITH moved AS (
  UPDATE analytics.user_events e
  SET user_id = l.user_id
  FROM unnest(%(ids)s::text[], %(users)s::uuid[]) AS l(id, user_id)
  WHERE e.{id_column} = l.id AND e.user_id IS NULL
  RETURNING date_trunc('hour', e.created_at) AS hour, e.user_id
)
INSERT INTO analytics.event_relinks (hour, user_id)
SELECT DISTINCT hour, user_id FROM moved
