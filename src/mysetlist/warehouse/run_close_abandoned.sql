-- Close `running` runs whose process is gone (the caller holds the run lock, or has just
-- seen it free). Params: exclude (the run being claimed, or NULL).
UPDATE analytics.etl_runs
   SET status = 'failed', finished_at = now(),
       error = coalesce(error, 'abandoned: the process running it stopped')
 WHERE status = 'running' AND id IS DISTINCT FROM %(exclude)s
