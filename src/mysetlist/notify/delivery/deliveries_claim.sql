-- Due deliveries, locked for this transaction (SKIP LOCKED: another drain takes the next
-- ones). If the worker dies mid-send its connection drops, the locks go with it, and the
-- rows, still queued, are claimed again: a delivery is marked sent only in the same
-- transaction that claimed it.
SELECT d.id, d.notification_id, d.user_id, d.channel, d.recipient, d.attempts, d.status,
       n.type, n.category, n.title, n.message, n.data, n.template_name, n.variables,
       n.created_at AS notification_created_at,
       u.display_name, u.email_encrypted, u.email_hash, u.timezone AS profile_timezone,
       u.locale, u.email_verified_at IS NOT NULL AS email_verified,
       (s.address_hash IS NOT NULL) AS suppressed, s.reason AS suppression_reason,
       p.channels, p.digest, p.quiet_hours_start, p.quiet_hours_end, p.timezone, p.muted,
       (p.user_id IS NOT NULL) AS has_preferences
FROM notify.notification_delivery d
JOIN notify.notifications n ON n.id = d.notification_id
JOIN app.users u ON u.id = d.user_id
LEFT JOIN notify.suppressions s ON s.address_hash = u.email_hash
LEFT JOIN notify.user_notification_preferences p ON p.user_id = d.user_id
WHERE d.status IN ('queued', 'deferred') AND d.next_attempt_at <= %(now)s
ORDER BY d.next_attempt_at
LIMIT %(limit)s
FOR UPDATE OF d SKIP LOCKED
