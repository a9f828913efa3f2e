UPDATE analytics.dashboard_sessions SET revoked_at = now()
WHERE session_hash = %(session_hash)s AND revoked_at IS NULL
