-- The procrastinate job that executes the run (deferred in the same transaction).
UPDATE analytics.etl_runs SET job_id = %(job_id)s WHERE id = %(run_id)s
