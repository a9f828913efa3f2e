-- Runs as the API and CLI show them, newest first: one (%(id)s), the active one
-- (%(active)s) or the latest %(limit)s. One column list for every view of a run.
SELECT id, trigger, mode, from_day, to_day, steps, status, requested_by,
       requested_by_role, job_id, attempt, created_at, started_at, finished_at, duration_ms,
       current_step, days_total, days_done, rows_written, step_timings, checks_status,
       checks_failed, maintenance, error, cancel_requested_at, cancelled_by
  FROM analytics.etl_runs
 WHERE id = coalesce(%(id)s, id)  -- a given id folds to `id = <id>` (the primary key)
   AND (NOT %(active)s OR status IN ('queued', 'running'))
 ORDER BY id DESC
 LIMIT %(limit)s
