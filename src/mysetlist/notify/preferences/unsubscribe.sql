-- Email of one category off for a user (one-click unsubscribe: idempotent), and the
-- latest email of that category marked unsubscribed. A user no longer there (erased) has
-- nothing written: the answer's `users` is 0.
WITH prefs AS (
  INSERT INTO notify.user_notification_preferences AS p (user_id, channels)
  SELECT u.id, jsonb_build_object(%(category)s::text, jsonb_build_object('email', false))
  FROM app.users u WHERE u.id = %(user_id)s AND u.deleted_at IS NULL
  ON CONFLICT (user_id) DO UPDATE SET
    channels = jsonb_set(p.channels, ARRAY[%(category)s::text],
                         coalesce(p.channels -> %(category)s::text, '{}'::jsonb)
                           || '{"email": false}'::jsonb),
    updated_at = now()
  RETURNING user_id
), latest AS (
  UPDATE notify.notification_delivery d
  SET status = 'unsubscribed', unsubscribed_at = now(), updated_at = now()
  WHERE d.id = (
    SELECT d2.id FROM notify.notification_delivery d2
    JOIN notify.notifications n ON n.id = d2.notification_id
    WHERE d2.user_id = (SELECT user_id FROM prefs) AND d2.channel = 'email'
      AND n.category = %(category)s AND d2.sent_at IS NOT NULL AND d2.unsubscribed_at IS NULL
    ORDER BY d2.sent_at DESC LIMIT 1)
)
SELECT count(*) AS users FROM prefs
