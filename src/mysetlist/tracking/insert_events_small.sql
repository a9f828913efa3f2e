-- A small flush without identity links as ONE statement (autocommit: its own transaction,
-- durable when it returns): one round trip instead of BEGIN, COPY, INSERT, COMMIT.
-- Same semantics as insert_events.sql: new message ids only, linked anonymous ids resolved.
WITH staged AS (
  SELECT *
  FROM unnest(%(message_id)s::text[], %(user_id)s::uuid[], %(anonymous_id)s::text[],
              %(session_id)s::text[], %(event_type)s::text[], %(page_url)s::text[],
              %(properties)s::text[], %(source)s::text[], %(created_at)s::timestamptz[])
    AS s(message_id, user_id, anonymous_id, session_id, event_type, page_url, properties,
         source, created_at)
),
fresh AS (
  INSERT INTO analytics.event_dedup (message_id)
  SELECT message_id FROM staged
  ON CONFLICT DO NOTHING
  RETURNING message_id
)
INSERT INTO analytics.user_events
  (message_id, user_id, anonymous_id, session_id, event_type, page_url, properties, source,
   created_at)
SELECT s.message_id, coalesce(s.user_id, la.user_id, ls.user_id), s.anonymous_id, s.session_id,
       s.event_type, s.page_url, s.properties::jsonb, s.source, s.created_at
FROM staged s
JOIN fresh f ON f.message_id = s.message_id
LEFT JOIN analytics.identity_links la
  ON s.user_id IS NULL AND la.kind = 'anonymous' AND la.id = s.anonymous_id
LEFT JOIN analytics.identity_links ls
  ON s.user_id IS NULL AND ls.kind = 'session' AND ls.id = s.session_id
