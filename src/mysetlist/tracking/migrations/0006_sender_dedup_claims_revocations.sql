-- Issue 15, items 5, 6 and 9.
--
-- Dedup per sender: a message id is unique for one sender (a user, a write key, an
-- anonymous visitor: `events.dedup_sender`, a 16-byte hash), not globally, so a sender who
-- uses a message id first cannot make another sender's event with it vanish. Rows from
-- before carry the empty sender; they age out with the dedup window.
ALTER TABLE analytics.event_dedup ADD COLUMN sender bytea NOT NULL DEFAULT '\x'::bytea;
ALTER TABLE analytics.event_dedup DROP CONSTRAINT event_dedup_pkey;
ALTER TABLE analytics.event_dedup ADD PRIMARY KEY (sender, message_id);
ALTER TABLE analytics.event_dedup ALTER COLUMN sender DROP DEFAULT;

-- A browser write key's user id is a claim, not the event's user: its own column (it was
-- `properties.$claimed_user_id`), so erasure and export find claims made in a user's name
-- by an index instead of reading every event's properties.
ALTER TABLE analytics.user_events ADD COLUMN claimed_user_id uuid;
UPDATE analytics.user_events
   SET claimed_user_id = (properties ->> '$claimed_user_id')::uuid,
       properties = properties - '$claimed_user_id'
 WHERE properties ? '$claimed_user_id';
CREATE INDEX idx_user_events_claimed ON analytics.user_events (claimed_user_id)
  WHERE claimed_user_id IS NOT NULL;

-- Signed ids that erasure revoked (SHA-256 of the stable id; the id itself is not kept): a
-- revoked id never links to a user again and is never renewed. Purged one signed-id
-- lifetime after revocation, when every token of the id has expired.
CREATE TABLE analytics.revoked_signed_ids (
  id_sha256   bytea PRIMARY KEY,
  revoked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_revoked_signed_ids_revoked_at ON analytics.revoked_signed_ids (revoked_at);
