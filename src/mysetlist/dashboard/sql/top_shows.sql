-- The ten shows with the most engagement (views + 2 x votes + 3 x shares) in the range.
SELECT coalesce(json_agg(t ORDER BY t.engagement DESC, t.show_id), '[]') AS data
FROM (
  SELECT e.show_id, a.name AS artist, v.city, s.starts_at,
         sum(e.engagement)::bigint AS engagement, sum(e.views)::bigint AS views,
         sum(e.votes)::bigint AS votes, sum(e.shares)::bigint AS shares
  FROM analytics.show_engagement_warehouse e
  JOIN app.shows s ON s.id = e.show_id
  JOIN app.artists a ON a.id = s.artist_id
  JOIN app.venues v ON v.id = s.venue_id
  WHERE e.day >= %(since_day)s AND e.day <= %(until_day)s
  GROUP BY e.show_id, a.name, v.city, s.starts_at
  ORDER BY engagement DESC, e.show_id
  LIMIT 10
) AS t
