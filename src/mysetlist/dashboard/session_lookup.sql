-- A live session: not logged out, not expired (revocations are checked in memory after).
SELECT operator_id, role, is_admin, extract(epoch FROM created_at)::float8 AS created_at,
       extract(epoch FROM expires_at)::bigint AS expires_at
FROM analytics.dashboard_sessions
WHERE session_hash = %(session_hash)s AND revoked_at IS NULL AND expires_at > now()
