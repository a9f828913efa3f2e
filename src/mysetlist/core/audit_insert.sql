INSERT INTO analytics.audit_log
  (action, outcome, actor_id, actor_role, target_type, target_id, request_id, ip, details)
VALUES (%(action)s, %(outcome)s, %(actor_id)s, %(actor_role)s, %(target_type)s, %(target_id)s,
        %(request_id)s, %(ip)s, %(details)s::jsonb)
RETURNING id
