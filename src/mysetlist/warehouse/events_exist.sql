-- Whether any event was created in [%(start)s, %(end)s). Constant bounds, so only the
-- partitions of those days are probed.
SELECT EXISTS (SELECT 1 FROM analytics.user_events
                WHERE created_at >= %(start)s AND created_at < %(end)s) AS found
