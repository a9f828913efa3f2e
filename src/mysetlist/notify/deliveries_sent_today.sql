-- Product email and push already sent to each user since midnight in the user's time zone
-- (the frequency cap is per local day: a message deferred by it goes at the next midnight).
SELECT d.user_id, count(*) AS sent
FROM notify.notification_delivery d
JOIN notify.notifications n ON n.id = d.notification_id
JOIN app.users u ON u.id = d.user_id
LEFT JOIN notify.user_notification_preferences p ON p.user_id = d.user_id
WHERE d.user_id = ANY(%(user_ids)s::uuid[])
  AND d.channel IN ('email', 'push')
  AND d.sent_at >= (date_trunc('day', %(now)s::timestamptz AT TIME ZONE coalesce(p.timezone, u.timezone))
                    AT TIME ZONE coalesce(p.timezone, u.timezone))
  AND n.category <> ALL(%(transactional)s::text[])
GROUP BY d.user_id
