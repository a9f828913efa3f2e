INSERT INTO analytics.dashboard_sessions (session_hash, operator_id, role, is_admin, expires_at)
VALUES (%(session_hash)s, %(operator_id)s, %(role)s, %(is_admin)s,
        now() + make_interval(secs => %(ttl)s))
