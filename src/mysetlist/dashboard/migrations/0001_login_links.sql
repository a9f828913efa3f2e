-- One-time dashboard login links (`mysetlist dashboard-link`): only a SHA-256 of the token
-- is kept, so a copy of this table opens nothing. A link works once, until it expires.
-- No user role reads it (the API's owner role redeems links).
CREATE TABLE analytics.dashboard_login_links (
  token_hash   bytea PRIMARY KEY,
  operator_id  uuid NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  used_at      timestamptz
);
CREATE INDEX dashboard_login_links_expires_idx ON analytics.dashboard_login_links (expires_at);
REVOKE ALL ON analytics.dashboard_login_links FROM PUBLIC;
