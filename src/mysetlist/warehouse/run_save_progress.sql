-- A running run's progress, as the API shows it while it runs.
UPDATE analytics.etl_runs
   SET current_step = %(current_step)s, days_done = %(days_done)s,
       rows_written = %(rows_written)s, step_timings = %(step_timings)s
 WHERE id = %(run_id)s
