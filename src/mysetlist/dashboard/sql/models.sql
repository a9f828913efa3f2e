-- Model versions in the registry (newest first), their primary offline metric and whether
-- each is the active one.
SELECT coalesce(json_agg(m ORDER BY m.name, m.version DESC), '[]') AS data
FROM (
  SELECT name, version, trained_at, active, primary_metric,
         metrics -> primary_metric AS primary_value, metrics, data_from, data_to, decision
  FROM analytics.ml_models
  ORDER BY trained_at DESC
  LIMIT 30
) AS m
