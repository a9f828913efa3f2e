-- The dashboard's provider health reads the deliveries queued in its range.
CREATE INDEX IF NOT EXISTS notification_delivery_queued_idx
  ON notify.notification_delivery (queued_at);
