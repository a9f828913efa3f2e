-- Activity per genre and day (the warehouse's materialized view) for the six genres with
-- the most activity in the range.
WITH in_range AS (
  SELECT genre, day, activity FROM analytics.genre_trends_daily
  WHERE day >= %(since_day)s AND day <= %(until_day)s
), top AS (
  SELECT genre FROM in_range GROUP BY genre ORDER BY sum(activity) DESC, genre LIMIT 6
)
SELECT json_build_object(
  'days', (SELECT coalesce(json_agg(DISTINCT day), '[]') FROM in_range),
  'genres', (SELECT coalesce(json_agg(json_build_object('genre', g.genre, 'points', (
                SELECT json_agg(json_build_object('day', r.day, 'activity', r.activity)
                                ORDER BY r.day)
                FROM in_range r WHERE r.genre = g.genre)) ORDER BY g.genre), '[]')
             FROM top g)
) AS data
