-- Where a run stands: its status, its work connections, whether a cancel was asked.
SELECT status, backend_pids, cancel_requested_at IS NOT NULL AS cancel_requested
  FROM analytics.etl_runs WHERE id = %(run_id)s
