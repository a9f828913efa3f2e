-- Message ids older than the dedup window can no longer be recognised as retries.
DELETE FROM analytics.event_dedup WHERE received_at < now() - make_interval(days => %(days)s)
