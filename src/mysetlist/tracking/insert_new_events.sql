-- One group-commit flush: the staged events that are new by (sender, message_id) go to
-- user_events. A message id is unique per sender (events.dedup_sender), so one sender's
-- id never hides another sender's event. Dedup and insert happen in the same transaction
-- as the ack's commit, so an acknowledged event is stored exactly once even if the client
-- retries after a crash.
-- An anonymous event whose anonymous_id/session_id is linked gets the user at insert, but
-- only when the event proved that id (a valid signed token, or a server key): a linked id
-- alone is not a credential to write into the user's history.
-- A template that group_commit.py fills: the rows come from the COPY-filled temp table, or,
-- for a small flush sent as arrays in one statement, from the `staged` CTE defined by
-- staged_event_arrays.sql.
WITH {prelude}fresh AS (
  INSERT INTO analytics.event_dedup (sender, message_id)
  SELECT sender, message_id FROM {staged}
  ON CONFLICT DO NOTHING
  RETURNING sender, message_id
)
INSERT INTO analytics.user_events
  (message_id, user_id, anonymous_id, session_id, event_type, page_url, properties, source,
   created_at, claimed_user_id)
SELECT s.message_id,
       -- A linked id is looked up only for an event that proved it (a subquery under CASE
       -- runs only when its branch is taken): most events prove nothing, and a join would
       -- probe identity_links twice per event.
       coalesce(
         s.user_id,
         CASE WHEN s.proves_anonymous THEN (
           SELECT la.user_id FROM analytics.identity_links la
           WHERE la.kind = 'anonymous' AND la.id = s.anonymous_id) END,
         CASE WHEN s.proves_session THEN (
           SELECT ls.user_id FROM analytics.identity_links ls
           WHERE ls.kind = 'session' AND ls.id = s.session_id) END
       ),
       s.anonymous_id, s.session_id, s.event_type, s.page_url, s.properties::jsonb, s.source,
       s.created_at, s.claimed_user_id
FROM {staged} s
-- (event_dedup.message_id is in the "C" collation, the staged one in the default: equal
-- either way, but the comparison must name one.)
JOIN fresh f ON f.message_id = s.message_id COLLATE "C" AND f.sender = s.sender
