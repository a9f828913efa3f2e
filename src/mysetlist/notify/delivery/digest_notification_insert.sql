-- The digest itself: one per user and period (the dedup key), with one email delivery.
WITH note AS (
  INSERT INTO notify.notifications
    (user_id, type, category, title, message, data, template_name, variables, dedup_key)
  VALUES (%(user_id)s, 'weekly_digest', 'digests', %(title)s, %(message)s,
          jsonb_build_object('frequency', %(frequency)s::text, 'periodStart', %(period)s::text),
          'weekly_digest', %(variables)s, %(dedup_key)s)
  ON CONFLICT (user_id, dedup_key) DO NOTHING
  RETURNING id, user_id
)
INSERT INTO notify.notification_delivery
  (notification_id, user_id, channel, recipient, next_attempt_at)
SELECT note.id, note.user_id, 'email', encode(u.email_hash, 'hex'), %(now)s
FROM note JOIN app.users u ON u.id = note.user_id
WHERE u.email_hash IS NOT NULL
RETURNING notification_id
