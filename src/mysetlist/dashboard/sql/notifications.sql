-- Notifications over the range: the daily rollup (notify.notification_analytics) by
-- channel and by template, bounce and complaint rates over sent, and each provider's
-- outcomes from the deliveries queued in the range.
WITH a AS (
  SELECT * FROM notify.notification_analytics
  WHERE day >= %(since_day)s AND day <= %(until_day)s
), totals AS (
  SELECT coalesce(sum(sent), 0) AS sent, coalesce(sum(delivered), 0) AS delivered,
         coalesce(sum(opened), 0) AS opened, coalesce(sum(clicked), 0) AS clicked,
         coalesce(sum(bounced), 0) AS bounced, coalesce(sum(complained), 0) AS complained,
         coalesce(sum(failed), 0) AS failed, coalesce(sum(queued), 0) AS queued
  FROM a
)
SELECT json_build_object(
  'totals', (SELECT row_to_json(totals) FROM totals),
  'bounce_rate', (SELECT round(bounced::numeric / nullif(sent, 0), 4) FROM totals),
  'complaint_rate', (SELECT round(complained::numeric / nullif(sent, 0), 4) FROM totals),
  'by_channel', (SELECT coalesce(json_agg(c ORDER BY c.channel), '[]') FROM (
                   SELECT channel, sum(sent) AS sent, sum(delivered) AS delivered,
                          sum(opened) AS opened, sum(clicked) AS clicked
                   FROM a GROUP BY channel) AS c),
  'by_template', (SELECT coalesce(json_agg(t ORDER BY t.sent DESC, t.template), '[]') FROM (
                    SELECT coalesce(nullif(template_name, ''), type) AS template,
                           sum(sent) AS sent, sum(delivered) AS delivered,
                           sum(opened) AS opened, sum(clicked) AS clicked,
                           sum(bounced) AS bounced
                    FROM a GROUP BY 1 ORDER BY sum(sent) DESC LIMIT 10) AS t),
  'providers', (SELECT coalesce(json_agg(p ORDER BY p.provider), '[]') FROM (
                  SELECT provider, count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent,
                         count(*) FILTER (WHERE status = 'failed') AS failed,
                         count(*) FILTER (WHERE status = 'bounced') AS bounced,
                         count(*) FILTER (WHERE status = 'deferred' AND defer_reason = 'retry')
                           AS retrying
                  FROM notify.notification_delivery
                  WHERE queued_at >= %(since)s AND provider IS NOT NULL
                  GROUP BY provider) AS p)
) AS data
