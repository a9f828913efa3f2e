-- Incremental runs: the users with events received since the watermark (within the
-- run's days, up to its snapshot) or with votes since then; only their per-user rows are
-- reloaded (see sql/extract.sql).
INSERT INTO etl_day_scope
SELECT user_id FROM analytics.user_events
 WHERE created_at >= %(start)s AND created_at < %(end)s
   AND received_at > %(since)s AND received_at <= %(snapshot)s
   AND user_id IS NOT NULL
UNION
SELECT user_id FROM app.setlist_votes WHERE created_at > %(since)s
;
ANALYZE etl_day_scope;
