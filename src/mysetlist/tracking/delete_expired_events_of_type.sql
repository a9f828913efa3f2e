-- Per-type retention (MYSETLIST_EVENT_RETENTION_OVERRIDES), shorter than the general one.
-- Incremental, without an (event_type, created_at) index (issue 18): only the events that
-- became old enough since the last run, whose mark is %(since)s (that run's now minus the
-- flush lag): those with created_at at most `days` before it (partitions pruned to that
-- range), and those received since it with an older client time (ingest accepts times back
-- to 1970; the received_at BRIN finds them at each partition's tail). The first run of a
-- (type, days) pair has since = the epoch (core.watermarks.EPOCH, before any client time
-- ingest accepts): every partition before the cutoff, once.
DELETE FROM analytics.user_events
 WHERE event_type = %(event_type)s
   AND created_at < %(now)s - make_interval(days => %(days)s)
   AND (created_at >= %(since)s - make_interval(days => %(days)s) OR received_at >= %(since)s)
