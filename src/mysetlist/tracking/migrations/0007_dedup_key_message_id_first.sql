-- The dedup key leads with the message id: (message_id, sender), was (sender, message_id).
-- Same uniqueness. An insert's descent then decides on the message id (usually unique by
-- itself) instead of first matching a 16-byte sender hash and then comparing ids within it,
-- and a flush's inserts no longer scatter over one key range per sender. Measured in a
-- scratch database (260,000 dedup rows, one writer, 100-event flushes, 2026-12-03), the
-- flush statement's server CPU with insert_new_events.sql's lookups under CASE: arrays
-- 28.0-30.7 -> 26.0-26.5 us/event, COPY of 300 27.9-28.4 -> 25.1-25.3 (b6eaeae, key
-- message_id alone: 25.7-26.8 and 24.0-24.3).
ALTER TABLE analytics.event_dedup
  DROP CONSTRAINT event_dedup_pkey,
  ADD CONSTRAINT event_dedup_pkey PRIMARY KEY (message_id, sender);
