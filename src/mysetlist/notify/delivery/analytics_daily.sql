-- notification_analytics for the days from %(since)s: per type, template and channel, the
-- deliveries queued that day (UTC) and how far each got. A delivery counts once per stage
-- it reached (a clicked one was also sent, delivered and opened).
INSERT INTO notify.notification_analytics AS a
  (day, type, template_name, channel, queued, sent, delivered, opened, machine_opened,
   clicked, bounced, complained, unsubscribed, dropped, failed, deferred, updated_at)
SELECT (d.queued_at AT TIME ZONE 'UTC')::date, n.type, coalesce(n.template_name, ''), d.channel,
       count(*),
       count(d.sent_at), count(d.delivered_at), count(*) FILTER (WHERE d.open_count > 0),
       count(*) FILTER (WHERE d.open_count > 0 AND d.machine_open),
       count(*) FILTER (WHERE d.click_count > 0), count(d.bounced_at), count(d.complained_at),
       count(d.unsubscribed_at), count(d.dropped_at), count(d.failed_at),
       count(*) FILTER (WHERE d.status = 'deferred'), now()
FROM notify.notification_delivery d
JOIN notify.notifications n ON n.id = d.notification_id
WHERE d.queued_at >= %(since)s
GROUP BY 1, 2, 3, 4
ON CONFLICT (day, type, template_name, channel) DO UPDATE SET
  queued = EXCLUDED.queued, sent = EXCLUDED.sent, delivered = EXCLUDED.delivered,
  opened = EXCLUDED.opened, machine_opened = EXCLUDED.machine_opened,
  clicked = EXCLUDED.clicked, bounced = EXCLUDED.bounced,
  complained = EXCLUDED.complained, unsubscribed = EXCLUDED.unsubscribed,
  dropped = EXCLUDED.dropped, failed = EXCLUDED.failed, deferred = EXCLUDED.deferred,
  updated_at = now()
