-- The engagement score (0..1, the spec's formula, averaged over a user's last 30 days) of
-- every user active in the range, in ten buckets of 0.1.
WITH active AS (
  SELECT engagement_score FROM analytics.user_behavior_warehouse
  WHERE last_active_day >= %(since_day)s
), buckets AS (
  SELECT least(floor(engagement_score * 10), 9)::int AS bucket, count(*) AS users
  FROM active GROUP BY 1
)
SELECT json_build_object(
  'buckets', (SELECT json_agg(json_build_object(
                'from', round(g / 10.0, 1), 'to', round((g + 1) / 10.0, 1),
                'users', coalesce(b.users, 0)) ORDER BY g)
              FROM generate_series(0, 9) AS g LEFT JOIN buckets b ON b.bucket = g),
  'users', (SELECT count(*) FROM active),
  'mean', (SELECT round(avg(engagement_score), 4) FROM active)
) AS data
