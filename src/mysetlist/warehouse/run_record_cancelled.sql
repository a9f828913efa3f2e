-- A running run nobody executes any more (its worker died) is cancelled by the canceller,
-- which holds the run lock.
UPDATE analytics.etl_runs SET status = 'cancelled', finished_at = now()
 WHERE id = %(run_id)s AND status = 'running'
