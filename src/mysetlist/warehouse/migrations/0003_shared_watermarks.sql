-- depends: 0002_etl_runs 0002_job_runs_and_watermarks
-- The ETL's watermark moves to the shared analytics.watermarks (core/watermarks.py) as
-- row 'warehouse.events': last_received_at becomes position. etl_watermarks is dropped.

INSERT INTO analytics.watermarks (name, position, last_full_day, run_id, updated_at)
SELECT 'warehouse.' || pipeline, last_received_at, last_full_day, run_id, updated_at
  FROM analytics.etl_watermarks
ON CONFLICT (name) DO NOTHING;

DROP TABLE analytics.etl_watermarks;
