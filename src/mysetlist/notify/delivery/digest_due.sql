-- Digest periods that have ended, one row per (user, frequency, period) with its items.
SELECT user_id, frequency, period_start, array_agg(notification_id ORDER BY notification_id) AS ids
FROM notify.digest_items
WHERE digest_id IS NULL AND due_at <= %(now)s
GROUP BY user_id, frequency, period_start
ORDER BY min(due_at)
LIMIT %(limit)s
