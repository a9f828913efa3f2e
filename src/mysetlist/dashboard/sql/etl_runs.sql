-- The latest ETL runs with status, duration, progress and quality checks.
SELECT coalesce(json_agg(r ORDER BY r.id DESC), '[]') AS data
FROM (
  SELECT id, trigger, mode, from_day, to_day, status, created_at, started_at, finished_at,
         round(duration_ms::numeric) AS duration_ms, current_step, days_done, days_total,
         rows_written, checks_status, checks_failed, error
  FROM analytics.etl_runs
  ORDER BY id DESC
  LIMIT 10
) AS r
