-- The newest `received_at` of the events created since %(since)s and received after
-- %(after)s (NULL: at any time), or NULL when there is none: how far ingest got, for
-- incremental runs (warehouse/ranges.py). With `after` the incremental watermark, the BRIN
-- on received_at can limit the read to the blocks written since the last run (live events
-- arrive in time order); a constant `since` lets the planner prune to the window's
-- partitions (a bound computed from now() left all of them to be planned).
SELECT max(received_at) AS newest FROM analytics.user_events
 WHERE created_at >= %(since)s
   AND received_at > coalesce(%(after)s::timestamptz, '-infinity')
