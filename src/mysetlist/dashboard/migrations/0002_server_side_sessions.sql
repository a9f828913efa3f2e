-- Dashboard sessions, server-side: the cookie holds a random session id, this table only its
-- SHA-256, so a copy of the table opens nothing. A session ends at logout (revoked_at), at
-- expires_at, and when the operator's tokens are revoked after it began
-- (core/token_revocation.py). The cookie is no API token: it is no JWT.
CREATE TABLE analytics.dashboard_sessions (
  session_hash  bytea PRIMARY KEY,
  operator_id   uuid NOT NULL,
  role          text NOT NULL,  -- the token's role (core.auth.ROLES)
  is_admin      boolean NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  revoked_at    timestamptz
);
CREATE INDEX dashboard_sessions_operator_idx ON analytics.dashboard_sessions (operator_id);
CREATE INDEX dashboard_sessions_expires_idx ON analytics.dashboard_sessions (expires_at);
REVOKE ALL ON analytics.dashboard_sessions FROM PUBLIC, anon, authenticated, service_role;

COMMENT ON COLUMN analytics.dashboard_sessions.operator_id IS 'personal: user_id; erase: delete';
COMMENT ON COLUMN analytics.dashboard_sessions.session_hash IS 'personal: none';
-- The login links name their operator too (they were undeclared).
COMMENT ON COLUMN analytics.dashboard_login_links.operator_id IS 'personal: user_id; erase: delete';
