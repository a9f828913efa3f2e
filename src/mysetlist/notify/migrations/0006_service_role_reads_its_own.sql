-- The user-facing notify routes run as the caller's own database role (core.db.as_caller):
-- `authenticated` for a fan's token, `service_role` for a service token. service_role
-- bypasses row-level security but held no privilege on these tables, so a service token's
-- preferences or inbox request failed with "permission denied" (a 500) where it used to be
-- forced into `authenticated`. It gets what `authenticated` has; the statements themselves
-- name the caller's own rows (`auth.uid()` or the caller's id), so it reads no one else's.
GRANT SELECT, INSERT, UPDATE ON notify.user_notification_preferences TO service_role;
GRANT SELECT ON notify.notifications, notify.notification_delivery TO service_role;
GRANT UPDATE (read_at) ON notify.notifications TO service_role;
