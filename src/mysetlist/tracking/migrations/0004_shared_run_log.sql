-- Tracking's runs and watermarks move to the shared run log and watermark tables
-- (core migration 0002_job_runs_and_watermarks), under the tasks' names
-- (`tracking.<task>`); the tracking-only tables go.

INSERT INTO analytics.job_runs
  (task, trigger, status, started_at, finished_at, duration_ms, rows, details, error)
SELECT 'tracking.' || name, 'schedule', status, started_at, finished_at,
       extract(epoch FROM finished_at - started_at) * 1000, rows, details, error
  FROM analytics.tracking_job_runs
 ORDER BY id;

INSERT INTO analytics.watermarks (name, position, updated_at)
SELECT 'tracking.' || name, watermark, updated_at
  FROM analytics.tracking_watermarks
ON CONFLICT (name) DO UPDATE
   SET position = GREATEST(analytics.watermarks.position, EXCLUDED.position);

DROP TABLE analytics.tracking_job_runs;
DROP TABLE analytics.tracking_watermarks;
