INSERT INTO notify.notification_delivery
  (notification_id, user_id, channel, recipient, status, next_attempt_at, defer_reason,
   deferred_at)
SELECT r.notification_id, r.user_id, r.channel, r.recipient, r.status, r.next_attempt_at,
       r.defer_reason, CASE WHEN r.status = 'deferred' THEN now() END
FROM unnest(%(notification_ids)b::bigint[], %(user_ids)b::uuid[], %(channels)b::text[],
            %(recipients)b::text[], %(statuses)b::text[], %(next_attempt_at)b::timestamptz[],
            %(defer_reasons)b::text[])
  AS r(notification_id, user_id, channel, recipient, status, next_attempt_at, defer_reason)
ON CONFLICT (notification_id, channel, recipient) DO NOTHING
