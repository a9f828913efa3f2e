-- The backend pids of the run's work connections (the cancel path signals them).
UPDATE analytics.etl_runs SET backend_pids = %(pids)s WHERE id = %(run_id)s
