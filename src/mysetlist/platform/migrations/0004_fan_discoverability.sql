-- Being found by other fans is opt-in. `discoverable` (off by default, set by the fan through
-- PATCH /api/me) lets other signed-in fans see the fan's display name and followed artists
-- (similar fans) and the fan's row on the public setlist leaderboard.
ALTER TABLE app.users ADD COLUMN discoverable boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN app.users.discoverable IS
  'personal: contact (the fan''s consent to be shown to other fans)';
GRANT UPDATE (discoverable) ON app.users TO authenticated;

-- The fan directory: what one fan may read about others, read under the caller's own role.
-- app.users and app.follows stay own-rows-only under RLS (and app.users holds the email
-- columns); these views run with their owner's rights and carry the consent rule themselves:
-- a row is visible when its fan is not erased and is discoverable, or is the caller, or the
-- caller is an operator. security_barrier: a caller's own conditions (WHERE user_id = ...)
-- are applied only after the consent rule, so no function of theirs sees a hidden row.
-- Without the caller's claims (the owner role reading with no request.jwt.claims) only
-- discoverable fans are visible, never the asking fan's own non-discoverable follows.
CREATE VIEW app.fan_directory WITH (security_barrier = true) AS
SELECT u.id AS user_id, u.display_name
FROM app.users u
WHERE u.deleted_at IS NULL
  AND (u.discoverable OR u.id = auth.uid() OR auth.is_admin()
       OR auth.role() = 'service_role');

CREATE VIEW app.fan_directory_follows WITH (security_barrier = true) AS
SELECT f.user_id, f.artist_id
FROM app.follows f
JOIN app.users u ON u.id = f.user_id
WHERE u.deleted_at IS NULL
  AND (u.discoverable OR u.id = auth.uid() OR auth.is_admin()
       OR auth.role() = 'service_role');

REVOKE ALL ON app.fan_directory, app.fan_directory_follows FROM PUBLIC;
GRANT SELECT ON app.fan_directory, app.fan_directory_follows TO authenticated, service_role;
