-- Issue 15: declarations for tracking's migration 0006.
-- A browser write key's unproven user id on an event: an attribute of the event (kind
-- claimed_user_id): the event is the user's when nobody else owns it, and erasure blanks the
-- claim on an event another user owns (see privacy/discovery.py ATTRIBUTE_KINDS).
COMMENT ON COLUMN analytics.user_events.claimed_user_id IS 'personal: claimed_user_id';
-- A 16-byte hash of the sender (user, write key or visitor) a message id is unique for:
-- not reversible to an id, purged after the dedup window.
COMMENT ON COLUMN analytics.event_dedup.sender IS 'personal: none';
-- SHA-256 of revoked signed ids: the ids themselves are gone with their links.
COMMENT ON COLUMN analytics.revoked_signed_ids.id_sha256 IS 'personal: none';
