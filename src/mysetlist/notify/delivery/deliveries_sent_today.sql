-- Product email and push already sent to each user since midnight in the user's time zone
-- (the frequency cap is per local day: a message deferred by it goes at the next midnight).
-- Each user's local midnight comes computed from Python, with the zone checked there: a
-- zone PostgreSQL does not know, stored by anyone, can never fail this statement.
SELECT d.user_id, count(*) AS sent
FROM unnest(%(user_ids)s::uuid[], %(since)s::timestamptz[]) AS u(user_id, since)
JOIN notify.notification_delivery d ON d.user_id = u.user_id AND d.sent_at >= u.since
JOIN notify.notifications n ON n.id = d.notification_id
WHERE d.channel IN ('email', 'push')
  AND n.category <> ALL(%(transactional)s::text[])
GROUP BY d.user_id
