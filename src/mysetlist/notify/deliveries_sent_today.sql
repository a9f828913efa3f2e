-- Product email and push already sent to each user in the last 24 hours (frequency cap).
SELECT d.user_id, count(*) AS sent
FROM notify.notification_delivery d
JOIN notify.notifications n ON n.id = d.notification_id
WHERE d.user_id = ANY(%(user_ids)s::uuid[])
  AND d.channel IN ('email', 'push')
  AND d.sent_at > now() - interval '24 hours'
  AND n.category <> ALL(%(transactional)s::text[])
GROUP BY d.user_id
