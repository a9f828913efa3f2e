UPDATE notify.notifications SET read_at = now()
WHERE user_id = %(user_id)s AND read_at IS NULL
RETURNING id
