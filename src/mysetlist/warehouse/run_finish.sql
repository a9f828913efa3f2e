-- A run's outcome. maintenance: the maintenance report (NULL keeps the stored one).
UPDATE analytics.etl_runs
   SET status = %(status)s, error = %(error)s, finished_at = now(),
       duration_ms = %(duration_ms)s, current_step = NULL, days_done = %(days_done)s,
       rows_written = %(rows_written)s, step_timings = %(step_timings)s,
       checks_status = %(checks_status)s, checks_failed = %(checks_failed)s,
       maintenance = coalesce(%(maintenance)s::jsonb, maintenance)
 WHERE id = %(run_id)s
