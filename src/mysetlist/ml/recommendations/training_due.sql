-- The recommender is due for training when a daily ETL run succeeded after its latest
-- version was trained (or it has none) and no ETL run is queued or running.
SELECT NOT EXISTS (SELECT 1 FROM analytics.etl_runs WHERE status IN ('queued', 'running'))
   AND EXISTS (
     SELECT 1 FROM analytics.etl_runs r
     WHERE r.mode = 'daily' AND r.status = 'succeeded'
       AND r.finished_at > coalesce(
         (SELECT max(m.trained_at) FROM analytics.ml_models m WHERE m.name = %(name)s),
         '-infinity')
   ) AS due
