-- Churn risk from the latest predictions (ml/churn): users per risk bucket, the predicted
-- probability in ten bins, and the ten users most at risk with what pushed them.
WITH latest AS (SELECT max(as_of) AS as_of FROM analytics.ml_churn_predictions),
p AS (
  SELECT c.* FROM analytics.ml_churn_predictions c JOIN latest l ON c.as_of = l.as_of
)
SELECT json_build_object(
  'as_of', (SELECT as_of FROM latest),
  'model_version', (SELECT max(model_version) FROM p),
  'users', (SELECT count(*) FROM p),
  'buckets', (SELECT coalesce(json_object_agg(risk_bucket, n), '{}')
              FROM (SELECT risk_bucket, count(*) AS n FROM p GROUP BY 1) AS b),
  'histogram', (SELECT json_agg(json_build_object(
                  'from', round(g / 10.0, 1), 'to', round((g + 1) / 10.0, 1),
                  'users', coalesce(h.n, 0)) ORDER BY g)
                FROM generate_series(0, 9) AS g
                LEFT JOIN (SELECT least(floor(probability * 10), 9)::int AS bin, count(*) AS n
                           FROM p GROUP BY 1) AS h ON h.bin = g),
  'most_at_risk', (SELECT coalesce(json_agg(r ORDER BY r.probability DESC), '[]')
                   FROM (SELECT p.user_id, u.display_name, round(p.probability::numeric, 4)
                                  AS probability, p.risk_bucket, p.top_features
                         FROM p LEFT JOIN app.users u ON u.id = p.user_id
                         ORDER BY p.probability DESC LIMIT 10) AS r)
) AS data
