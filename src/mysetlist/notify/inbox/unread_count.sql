SELECT count(*) AS unread
FROM notify.notifications n
WHERE n.user_id = %(user_id)s AND n.read_at IS NULL
  AND EXISTS (SELECT 1 FROM notify.notification_delivery d
              WHERE d.notification_id = n.id AND d.channel = 'in_app'
                AND d.status IN ('delivered', 'opened', 'clicked'))
