-- The demo's events in [start, end).
DELETE FROM analytics.user_events
WHERE source = 'demo' AND created_at >= %(start)s AND created_at < %(end)s
