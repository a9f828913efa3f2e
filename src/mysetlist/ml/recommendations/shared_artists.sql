-- Similar fans as the caller may see them: of the candidates (nearest first), those the fan
-- directory shows the caller (discoverable fans; every fan for an operator), each with the
-- artists both they and %(user_id)s follow. Runs under the caller's own role: the consent
-- rule is in the app.fan_directory views, not here.
WITH candidates AS (
  SELECT c.user_id, c.nearness
  FROM unnest(%(candidates)s::uuid[]) WITH ORDINALITY AS c(user_id, nearness)
), visible AS (
  SELECT d.user_id, d.display_name, c.nearness
  FROM candidates c JOIN app.fan_directory d ON d.user_id = c.user_id
  WHERE d.user_id <> %(user_id)s
  ORDER BY c.nearness
  LIMIT %(limit)s
)
SELECT v.user_id::text AS user_id, v.display_name,
       coalesce(array_agg(a.name ORDER BY a.name) FILTER (WHERE a.id IS NOT NULL), '{}')
         AS shared_artists
FROM visible v
LEFT JOIN app.fan_directory_follows theirs ON theirs.user_id = v.user_id
LEFT JOIN app.fan_directory_follows mine
  ON mine.user_id = %(user_id)s AND mine.artist_id = theirs.artist_id
LEFT JOIN app.artists a ON a.id = mine.artist_id
GROUP BY v.user_id, v.display_name, v.nearness
ORDER BY v.nearness
