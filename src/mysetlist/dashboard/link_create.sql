INSERT INTO analytics.dashboard_login_links (token_hash, operator_id, expires_at)
VALUES (%(token_hash)s, %(operator_id)s, now() + make_interval(secs => %(ttl)s))
