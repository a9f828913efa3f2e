-- A session-local staging table for one batch of generated events: fixed-width columns only,
-- so the generator can fill it with one binary COPY; insert_staged_events.sql expands it.
CREATE TEMP TABLE IF NOT EXISTS demo_event_stage (
  user_id     uuid NOT NULL,
  user_no     integer NOT NULL,
  session_no  bigint NOT NULL,
  kind        smallint NOT NULL,   -- 1-based index into the event type list
  ref_id      bigint NOT NULL,     -- artist, show, page or campaign (by kind)
  extra_id    bigint NOT NULL,     -- song id, query length or share channel (by kind)
  created_at  timestamptz NOT NULL
) ON COMMIT DROP
