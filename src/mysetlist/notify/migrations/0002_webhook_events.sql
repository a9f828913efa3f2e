-- Provider events already applied (SNS MessageId; SendGrid sg_event_id and its fallback
-- key, since SendGrid retries have been seen with new event ids): a repeat changes nothing.
-- Keys only, no personal data.
CREATE TABLE notify.webhook_events (
  source       text NOT NULL CHECK (source IN ('sendgrid', 'ses')),
  event_key    text NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, event_key)
);
CREATE INDEX webhook_events_received_idx ON notify.webhook_events (received_at);
