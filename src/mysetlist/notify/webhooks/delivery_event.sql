-- One provider event moves one email delivery along the status machine. Progress
-- (sent < delivered < opened < clicked) only moves forward and never overwrites an outcome
-- (bounced, dropped, complained, unsubscribed, failed); outcomes always apply. A provider's
-- 'deferred' (it is retrying on its side) is recorded but leaves the status alone: our own
-- 'deferred' means "due for our drain", which would send the message again.
WITH target AS (
  SELECT id FROM notify.notification_delivery
  WHERE channel = 'email'
    AND (id = %(delivery_id)s
         OR (%(delivery_id)s::bigint IS NULL AND provider_message_id = %(message_id)s))
  LIMIT 1
  FOR UPDATE
),
ranked AS (
  SELECT d.id,
         CASE d.status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'opened' THEN 3
                       WHEN 'clicked' THEN 4 ELSE 0 END AS current_rank,
         d.status IN ('bounced', 'dropped', 'complained', 'unsubscribed', 'failed') AS settled,
         CASE %(status)s::text WHEN 'delivered' THEN 2 WHEN 'opened' THEN 3
                               WHEN 'clicked' THEN 4 ELSE NULL END AS new_rank
  FROM notify.notification_delivery d JOIN target USING (id)
)
UPDATE notify.notification_delivery d SET
  status = CASE
    WHEN %(status)s = 'deferred' THEN d.status
    WHEN r.new_rank IS NULL THEN %(status)s
    WHEN r.settled OR r.new_rank <= r.current_rank THEN d.status
    ELSE %(status)s END,
  delivered_at = CASE WHEN %(status)s IN ('delivered', 'opened', 'clicked')
                      THEN coalesce(d.delivered_at, %(at)s) ELSE d.delivered_at END,
  opened_at = CASE WHEN %(status)s IN ('opened', 'clicked')
                   THEN coalesce(d.opened_at, %(at)s) ELSE d.opened_at END,
  clicked_at = CASE WHEN %(status)s = 'clicked' THEN coalesce(d.clicked_at, %(at)s)
                    ELSE d.clicked_at END,
  bounced_at = CASE WHEN %(status)s = 'bounced' THEN coalesce(d.bounced_at, %(at)s)
                    ELSE d.bounced_at END,
  dropped_at = CASE WHEN %(status)s = 'dropped' THEN coalesce(d.dropped_at, %(at)s)
                    ELSE d.dropped_at END,
  complained_at = CASE WHEN %(status)s = 'complained' THEN coalesce(d.complained_at, %(at)s)
                       ELSE d.complained_at END,
  unsubscribed_at = CASE WHEN %(status)s = 'unsubscribed'
                         THEN coalesce(d.unsubscribed_at, %(at)s) ELSE d.unsubscribed_at END,
  deferred_at = CASE WHEN %(status)s = 'deferred' THEN %(at)s ELSE d.deferred_at END,
  open_count = d.open_count + (%(status)s = 'opened')::int,
  click_count = d.click_count + (%(status)s = 'clicked')::int,
  machine_open = d.machine_open OR %(machine_open)s,
  last_error = coalesce(%(detail)s, d.last_error),
  updated_at = now()
FROM ranked r
WHERE d.id = r.id
RETURNING d.id, d.status
