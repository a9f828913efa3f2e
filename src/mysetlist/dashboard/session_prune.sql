DELETE FROM analytics.dashboard_sessions
WHERE expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day'
