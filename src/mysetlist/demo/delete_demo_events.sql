DELETE FROM analytics.user_events WHERE source = 'demo'
