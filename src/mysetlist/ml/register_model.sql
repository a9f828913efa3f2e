INSERT INTO analytics.ml_models
  (name, version, data_from, data_to, params, metrics, primary_metric, higher_is_better,
   artifact, artifact_format, active, activated_at, decision)
VALUES (%(name)s,
        (SELECT coalesce(max(version), 0) + 1 FROM analytics.ml_models WHERE name = %(name)s),
        %(data_from)s, %(data_to)s, %(params)s, %(metrics)s, %(primary_metric)s,
        %(higher_is_better)s, %(artifact)s, %(artifact_format)s, %(activate)s,
        CASE WHEN %(activate)s THEN now() END, %(decision)s)
RETURNING id, version
