-- Trending artists on the latest loaded day of the range: growth of the last 7 days'
-- activity over the artist's own 28-day baseline (warehouse trending step), top ten.
WITH last_day AS (
  SELECT max(day) AS day FROM analytics.artist_popularity_warehouse
  WHERE day >= %(since_day)s AND day <= %(until_day)s
)
SELECT json_build_object(
  'day', (SELECT day FROM last_day),
  'artists', (SELECT coalesce(json_agg(t ORDER BY t.trending_score DESC, t.recent_avg DESC), '[]')
              FROM (SELECT p.artist_id, a.name, p.trending_score, p.recent_avg, p.baseline_avg,
                           p.activity
                    FROM analytics.artist_popularity_warehouse p
                    JOIN last_day l ON p.day = l.day
                    JOIN app.artists a ON a.id = p.artist_id
                    WHERE p.trending_score IS NOT NULL
                    ORDER BY p.trending_score DESC, p.recent_avg DESC LIMIT 10) AS t)
) AS data
