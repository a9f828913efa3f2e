-- notification_analytics: drops and machine opens (Apple Mail Privacy Protection and the
-- like open every message: counted, but not in the open rate), and the rates themselves.
-- Rates are over messages sent (accepted by the provider): SMTP reports no delivery, so a
-- rate over `delivered` would be empty for it. NULL when nothing was sent.
ALTER TABLE notify.notification_analytics
  ADD COLUMN dropped integer NOT NULL DEFAULT 0,
  ADD COLUMN machine_opened integer NOT NULL DEFAULT 0,
  ADD COLUMN delivery_rate numeric GENERATED ALWAYS AS
    (round(delivered::numeric / nullif(sent, 0), 4)) STORED,
  ADD COLUMN open_rate numeric GENERATED ALWAYS AS
    (round((opened - machine_opened)::numeric / nullif(sent, 0), 4)) STORED,
  ADD COLUMN click_through_rate numeric GENERATED ALWAYS AS
    (round(clicked::numeric / nullif(sent, 0), 4)) STORED,
  ADD COLUMN bounce_rate numeric GENERATED ALWAYS AS
    (round(bounced::numeric / nullif(sent, 0), 4)) STORED,
  ADD COLUMN complaint_rate numeric GENERATED ALWAYS AS
    (round(complained::numeric / nullif(sent, 0), 4)) STORED;
