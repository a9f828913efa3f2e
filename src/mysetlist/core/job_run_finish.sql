-- A run ends: its outcome, counts and the time it took (the database clock, like started_at).
UPDATE analytics.job_runs
   SET status = %(status)s,
       finished_at = clock_timestamp(),
       duration_ms = extract(epoch FROM clock_timestamp() - started_at) * 1000,
       rows = %(rows)s,
       details = %(details)s::jsonb,
       error = %(error)s
 WHERE id = %(id)s
