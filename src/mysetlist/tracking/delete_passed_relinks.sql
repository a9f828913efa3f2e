-- Relinks an earlier rollup has passed (up to its watermark) are done with.
DELETE FROM analytics.event_relinks WHERE relinked_at <= %(since)s
