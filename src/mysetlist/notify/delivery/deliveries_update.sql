-- The outcome of each claimed delivery; every status has its own timestamp. Arrays in
-- binary format (the b placeholders): text arrays are escaped element by element on the
-- client.
UPDATE notify.notification_delivery d SET
  status = o.status,
  provider = coalesce(o.provider, d.provider),
  provider_message_id = coalesce(o.message_id, d.provider_message_id),
  last_error = o.error,
  attempts = d.attempts + o.attempted::int,
  next_attempt_at = coalesce(o.next_attempt_at, d.next_attempt_at),
  defer_reason = o.defer_reason,
  sent_at = CASE WHEN o.status = 'sent' THEN now() ELSE d.sent_at END,
  delivered_at = CASE WHEN o.status = 'delivered' THEN now() ELSE d.delivered_at END,
  deferred_at = CASE WHEN o.status = 'deferred' THEN now() ELSE d.deferred_at END,
  bounced_at = CASE WHEN o.status = 'bounced' THEN now() ELSE d.bounced_at END,
  dropped_at = CASE WHEN o.status = 'dropped' THEN now() ELSE d.dropped_at END,
  failed_at = CASE WHEN o.status = 'failed' THEN now() ELSE d.failed_at END,
  updated_at = now()
FROM unnest(%(ids)b::bigint[], %(statuses)b::text[], %(providers)b::text[],
            %(message_ids)b::text[], %(errors)b::text[], %(attempted)b::boolean[],
            %(next_attempt_at)b::timestamptz[], %(defer_reasons)b::text[])
  AS o(id, status, provider, message_id, error, attempted, next_attempt_at, defer_reason)
WHERE d.id = o.id
