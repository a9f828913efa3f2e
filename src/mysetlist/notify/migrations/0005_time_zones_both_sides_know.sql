-- Issue 15: a zone Python knows but PostgreSQL does not ("localtime") was accepted as a
-- preference and failed every drain touching that fan. The API now takes only zones both
-- sides know (core/time_zones.py); a preference zone stored before that and unknown here
-- is cleared, so the profile's zone applies (readers fall back to UTC for any left).
UPDATE notify.user_notification_preferences
SET timezone = NULL, updated_at = now()
WHERE timezone IS NOT NULL
  AND timezone NOT IN (SELECT name FROM pg_timezone_names);
