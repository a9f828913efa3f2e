-- Cold start: artists by followers overall and by new follows and votes in the last
-- %(trending_days)s days, optionally only those of the given genres.
WITH recent AS (
  SELECT artist_id, count(*) AS n FROM app.follows
  WHERE created_at >= now() - make_interval(days => %(trending_days)s) GROUP BY artist_id
  UNION ALL
  SELECT s.artist_id, count(DISTINCT v.user_id) FROM app.setlist_votes v
  JOIN app.shows s ON s.id = v.show_id
  WHERE v.created_at >= now() - make_interval(days => %(trending_days)s) GROUP BY s.artist_id
), trending AS (SELECT artist_id, sum(n)::float8 AS n FROM recent GROUP BY artist_id),
followers AS (SELECT artist_id, count(*)::float8 AS n FROM app.follows GROUP BY artist_id)
SELECT a.id AS artist_id, a.name, a.genres,
       coalesce(f.n, 0) AS followers, coalesce(t.n, 0) AS trending
FROM app.artists a
LEFT JOIN followers f ON f.artist_id = a.id
LEFT JOIN trending t ON t.artist_id = a.id
WHERE cardinality(%(genres)s::text[]) = 0 OR a.genres && %(genres)s::text[]
ORDER BY coalesce(t.n, 0) + coalesce(f.n, 0) DESC, a.id
LIMIT %(limit)s
