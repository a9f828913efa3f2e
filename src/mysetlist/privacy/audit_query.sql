SELECT id, at, action, outcome, actor_id, actor_role, target_type, target_id, request_id,
       host(ip) AS ip, details
FROM analytics.audit_log
WHERE (%(action)s::text IS NULL OR action = %(action)s)
  AND (%(outcome)s::text IS NULL OR outcome = %(outcome)s)
  AND (%(actor_id)s::uuid IS NULL OR actor_id = %(actor_id)s)
  AND (%(target_id)s::text IS NULL OR target_id = %(target_id)s)
  AND (%(request_id)s::text IS NULL OR request_id = %(request_id)s)
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
  AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s)
ORDER BY id DESC
LIMIT %(limit)s
