SELECT u.timezone AS profile_timezone, p.channels, p.digest, p.quiet_hours_start,
       p.quiet_hours_end, p.timezone, p.muted, (p.user_id IS NOT NULL) AS stored
FROM app.users u
LEFT JOIN notify.user_notification_preferences p ON p.user_id = u.id
WHERE u.id = %(user_id)s AND u.deleted_at IS NULL
