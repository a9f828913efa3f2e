-- A run's earlier check results (a retried run stores its own anew).
DELETE FROM analytics.etl_quality_checks WHERE run_id = %(run_id)s
