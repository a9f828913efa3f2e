-- A run's quality checks, in the order they were stored.
SELECT name, category, passed, details, checked_at
  FROM analytics.etl_quality_checks
 WHERE run_id = %(run_id)s
 ORDER BY id
