-- The preferences page's form: each product category's email on or off. A user no longer
-- there (erased) has nothing written (no row returned).
INSERT INTO notify.user_notification_preferences AS p (user_id, channels)
SELECT u.id, %(channels)s::jsonb
FROM app.users u WHERE u.id = %(user_id)s AND u.deleted_at IS NULL
ON CONFLICT (user_id) DO UPDATE SET channels = p.channels || (
  SELECT jsonb_object_agg(key, coalesce(p.channels -> key, '{}'::jsonb) || value)
  FROM jsonb_each(%(channels)s::jsonb)
), updated_at = now()
RETURNING user_id
