-- Run history: incremental runs that found nothing new are kept 7 days, the rest (with
-- their checks and audit rows) as long as the warehouse rows.
DELETE FROM analytics.etl_runs
 WHERE status NOT IN ('queued', 'running')
   AND (created_at < %(cutoff)s::date
        OR (mode = 'incremental' AND days_total = 0 AND created_at < now() - interval '7 days'))
