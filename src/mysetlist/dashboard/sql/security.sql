-- Security over the range, from the audit trail (analytics.audit_log): failed
-- authentications (401), refusals (403), rate-limit hits (429) and webhook signature
-- failures by kind and source (the API area, as in /metrics; a webhook's provider) and over
-- time (hours for a range of a day, else days, UTC), the latest alerts, and the GDPR
-- exports and erasures. Nothing here carries the actor or the IP (personal data).
WITH entries AS (
  SELECT at, action, details,
         CASE WHEN action LIKE 'security.%%' THEN substr(action, 10) END AS kind,
         coalesce(
           details ->> 'source',
           CASE WHEN split_part(details ->> 'path', '/', 2) = 'api'
                     AND split_part(details ->> 'path', '/', 3) <> ''
                THEN left(split_part(details ->> 'path', '/', 3), 32)
                ELSE coalesce(nullif(left(split_part(details ->> 'path', '/', 2), 32), ''),
                              'root') END) AS source
  FROM analytics.audit_log
  WHERE at >= %(since)s
    AND action IN ('security.auth_failed', 'security.forbidden', 'security.rate_limited',
                   'security.webhook_signature', 'security.alert', 'privacy.export',
                   'privacy.erasure_requested', 'privacy.erasure_done')
), incidents AS (
  SELECT * FROM entries WHERE kind IN ('auth_failed', 'forbidden', 'rate_limited',
                                       'webhook_signature')
), bucket AS (
  SELECT CASE WHEN %(since)s > now() - interval '2 days' THEN 'hour' ELSE 'day' END AS unit
)
SELECT json_build_object(
  'entries', (SELECT count(*) FROM entries),
  'since', %(since)s::timestamptz,
  'bucket', (SELECT unit FROM bucket),
  'totals', json_build_object(
     'auth_failed', (SELECT count(*) FROM incidents WHERE kind = 'auth_failed'),
     'forbidden', (SELECT count(*) FROM incidents WHERE kind = 'forbidden'),
     'rate_limited', (SELECT count(*) FROM incidents WHERE kind = 'rate_limited'),
     'webhook_signature', (SELECT count(*) FROM incidents WHERE kind = 'webhook_signature'),
     'alerts', (SELECT count(*) FROM entries WHERE action = 'security.alert'),
     'exports', (SELECT count(*) FROM entries WHERE action = 'privacy.export'),
     'erasures_requested', (SELECT count(*) FROM entries
                            WHERE action = 'privacy.erasure_requested'
                              AND details ->> 'created' = 'true'),
     'erasures_done', (SELECT count(*) FROM entries WHERE action = 'privacy.erasure_done')),
  'by_source', (SELECT coalesce(json_agg(s ORDER BY s.events DESC, s.kind, s.source), '[]')
                FROM (SELECT kind, source, count(*) AS events, max(at) AS last_at
                      FROM incidents GROUP BY kind, source) AS s),
  'over_time', (SELECT coalesce(json_agg(t ORDER BY t.at, t.kind), '[]')
                FROM (SELECT date_trunc((SELECT unit FROM bucket), at, 'UTC') AS at, kind,
                             count(*) AS events
                      FROM incidents GROUP BY 1, 2) AS t),
  'recent_alerts', (SELECT coalesce(json_agg(a ORDER BY a.at DESC), '[]')
                    FROM (SELECT at, details ->> 'kind' AS kind, source,
                                 (details ->> 'per_minute')::int AS per_minute
                          FROM entries WHERE action = 'security.alert'
                          ORDER BY at DESC LIMIT 10) AS a)
) AS data
