-- A queued run (or a failed one the job queue retries) starts, unless a cancel came
-- first. Params: run_id.
UPDATE analytics.etl_runs
   SET status = 'running', started_at = now(), attempt = attempt + 1,
       error = NULL, finished_at = NULL
 WHERE id = %(run_id)s AND status IN ('queued', 'failed') AND cancel_requested_at IS NULL
RETURNING *
