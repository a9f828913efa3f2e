INSERT INTO notify.notification_delivery
  (notification_id, user_id, channel, recipient, status, next_attempt_at, defer_reason,
   deferred_at)
SELECT r.notification_id, r.user_id, r.channel, r.recipient, r.status, r.next_attempt_at,
       r.defer_reason, CASE WHEN r.status = 'deferred' THEN now() END
FROM unnest(%(notification_ids)s::bigint[], %(user_ids)s::uuid[], %(channels)s::text[],
            %(recipients)s::text[], %(statuses)s::text[], %(next_attempt_at)s::timestamptz[],
            %(defer_reasons)s::text[])
  AS r(notification_id, user_id, channel, recipient, status, next_attempt_at, defer_reason)
ON CONFLICT (notification_id, channel, recipient) DO NOTHING
