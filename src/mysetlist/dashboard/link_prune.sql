DELETE FROM analytics.dashboard_login_links WHERE expires_at < now() - interval '1 day'
