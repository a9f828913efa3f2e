-- The caller's in-app inbox, newest first (run as the caller: RLS keeps it to their rows).
-- A notification is in the inbox once its in-app delivery was delivered.
SELECT n.id, n.type, n.category, n.title, n.message, n.data, n.created_at, n.read_at
FROM notify.notifications n
WHERE n.user_id = %(user_id)s
  AND EXISTS (SELECT 1 FROM notify.notification_delivery d
              WHERE d.notification_id = n.id AND d.channel = 'in_app'
                AND d.status IN ('delivered', 'opened', 'clicked'))
  AND (%(after)s::bigint IS NULL OR n.id > %(after)s)
  AND (%(before)s::bigint IS NULL OR n.id < %(before)s)
  AND (NOT %(unread_only)s OR n.read_at IS NULL)
ORDER BY CASE WHEN %(after)s::bigint IS NULL THEN -n.id ELSE n.id END
LIMIT %(limit)s
