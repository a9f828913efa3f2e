-- The period's notifications the user has not already seen in the app (locked: a second
-- digest run waits, then finds them carried).
SELECT n.id, n.title, n.message, n.type
FROM notify.digest_items i
JOIN notify.notifications n ON n.id = i.notification_id
WHERE i.user_id = %(user_id)s AND i.notification_id = ANY(%(ids)s::bigint[])
  AND i.digest_id IS NULL
  AND n.read_at IS NULL
ORDER BY n.created_at
FOR UPDATE OF i
