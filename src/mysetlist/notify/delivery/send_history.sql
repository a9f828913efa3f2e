-- Send requests, newest first, with their deliveries' status counts per channel.
SELECT r.id AS request_id, r.type, r.created_at, r.state, r.caller, r.idempotency_key,
       r.response -> 'notifications' AS notifications,
       coalesce((
         SELECT jsonb_object_agg(channel, statuses)
         FROM (SELECT channel, jsonb_object_agg(status, n) AS statuses
               FROM (SELECT d.channel, d.status, count(*) AS n
                     FROM notify.notifications nt
                     JOIN notify.notification_delivery d ON d.notification_id = nt.id
                     WHERE nt.request_id = r.id
                     GROUP BY d.channel, d.status) per_status
               GROUP BY channel) per_channel
       ), '{}'::jsonb) AS channels
FROM notify.send_requests r
WHERE (%(request_id)s::bigint IS NULL OR r.id = %(request_id)s::bigint)
  AND (%(before)s::bigint IS NULL OR r.id < %(before)s::bigint)
ORDER BY r.id DESC
LIMIT %(limit)s
