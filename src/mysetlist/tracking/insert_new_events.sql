-- One group-commit flush: the staged events that are new by message_id go to user_events.
-- Dedup and insert happen in the same transaction as the ack's commit, so an acknowledged
-- event is stored exactly once even if the client retries after a crash.
-- Anonymous events whose anonymous_id/session_id is already linked get the user at insert.
-- A template that group_commit.py fills: the rows come from the COPY-filled temp table, or,
-- for a small flush sent as arrays in one statement, from the `staged` CTE defined by
-- staged_event_arrays.sql.
WITH {prelude}fresh AS (
  INSERT INTO analytics.event_dedup (message_id)
  SELECT message_id FROM {staged}
  ON CONFLICT DO NOTHING
  RETURNING message_id
)
INSERT INTO analytics.user_events
  (message_id, user_id, anonymous_id, session_id, event_type, page_url, properties, source,
   created_at)
SELECT s.message_id, coalesce(s.user_id, la.user_id, ls.user_id), s.anonymous_id, s.session_id,
       s.event_type, s.page_url, s.properties::jsonb, s.source, s.created_at
FROM {staged} s
JOIN fresh f ON f.message_id = s.message_id
LEFT JOIN analytics.identity_links la
  ON s.user_id IS NULL AND la.kind = 'anonymous' AND la.id = s.anonymous_id
LEFT JOIN analytics.identity_links ls
  ON s.user_id IS NULL AND ls.kind = 'session' AND ls.id = s.session_id
