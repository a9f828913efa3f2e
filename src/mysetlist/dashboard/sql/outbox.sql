-- The local outbox (EMAIL_PROVIDERS=outbox, what `mysetlist demo` uses without a mail
-- provider): how many messages it took in the range, and the latest ones by file name.
-- No address or text here: those stay in the files.
SELECT json_build_object(
  'count', (SELECT count(*) FROM notify.notification_delivery
            WHERE provider = 'outbox' AND sent_at >= %(since)s),
  'messages', (SELECT coalesce(json_agg(m ORDER BY m.sent_at DESC), '[]') FROM (
                 SELECT d.sent_at, n.type, d.provider_message_id AS file
                 FROM notify.notification_delivery d
                 JOIN notify.notifications n ON n.id = d.notification_id
                 WHERE d.provider = 'outbox' AND d.sent_at >= %(since)s
                 ORDER BY d.sent_at DESC LIMIT 12) AS m)
) AS data
