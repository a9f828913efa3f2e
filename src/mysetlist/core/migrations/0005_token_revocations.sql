-- Token revocation: every token of a user issued before `valid_after` is refused (erasure,
-- `mysetlist auth revoke`, the operator endpoint). The user is named by a keyed hash
-- (HMAC of the user id with a key that is not in the database), so the row that keeps an
-- erased user's old tokens refused identifies nobody once the erasure is done.
-- API processes hold every row in memory and read the recent ones every second or so
-- (core/token_revocation.py): the per-request check costs no database or Redis round trip.
CREATE TABLE analytics.token_revocations (
  user_key     bytea PRIMARY KEY,
  valid_after  timestamptz NOT NULL,
  revoked_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX token_revocations_revoked_at_idx ON analytics.token_revocations (revoked_at);

COMMENT ON COLUMN analytics.token_revocations.user_key IS
  'personal: none (a keyed hash of a user id, kept after erasure so the user''s old tokens stay refused; the key is not in the database)';

REVOKE ALL ON analytics.token_revocations FROM PUBLIC, anon, authenticated, service_role;
