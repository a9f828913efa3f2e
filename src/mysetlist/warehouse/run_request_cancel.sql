-- Cancel the active run: a queued one is cancelled here and now, a running one is
-- flagged (it stops at its next check, or its database work is cancelled).
UPDATE analytics.etl_runs
   SET cancel_requested_at = coalesce(cancel_requested_at, now()),
       cancelled_by = %(actor_id)s,
       status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
       finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END
 WHERE status IN ('queued', 'running')
RETURNING id, status, backend_pids, job_id
