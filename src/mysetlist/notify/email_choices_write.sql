-- The preferences page's form: each product category's email on or off.
INSERT INTO notify.user_notification_preferences AS p (user_id, channels)
VALUES (%(user_id)s, %(channels)s)
ON CONFLICT (user_id) DO UPDATE SET channels = p.channels || (
  SELECT jsonb_object_agg(key, coalesce(p.channels -> key, '{}'::jsonb) || value)
  FROM jsonb_each(%(channels)s::jsonb)
), updated_at = now()
