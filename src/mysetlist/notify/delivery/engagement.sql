-- How often each user engaged with each channel's messages over 90 days (opens or clicks
-- of email and push, reads of in-app): what "best" routing prefers.
SELECT d.user_id, d.channel,
       avg(CASE WHEN d.channel = 'in_app' THEN (n.read_at IS NOT NULL)::int
                ELSE (d.open_count > 0 OR d.click_count > 0)::int END)::float8 AS rate
FROM notify.notification_delivery d
JOIN notify.notifications n ON n.id = d.notification_id
WHERE d.user_id = ANY(%(user_ids)s::uuid[])
  AND d.queued_at > now() - interval '90 days'
  AND d.status NOT IN ('queued', 'deferred', 'failed', 'dropped')
GROUP BY d.user_id, d.channel
