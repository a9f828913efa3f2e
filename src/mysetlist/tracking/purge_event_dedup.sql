-- Message ids older than the dedup window can no longer be recognised as retries. A seq
-- scan, daily: no index on received_at, which every ingested event would pay for
-- (tracking migration 0009).
DELETE FROM analytics.event_dedup WHERE received_at < now() - make_interval(days => %(days)s)
