-- Evidence for similar users: the artists each neighbour follows that the user follows too.
SELECT u.id::text AS user_id, u.display_name,
       coalesce(array_agg(a.name ORDER BY a.name) FILTER (WHERE a.id IS NOT NULL), '{}')
         AS shared_artists
FROM app.users u
LEFT JOIN app.follows theirs ON theirs.user_id = u.id
LEFT JOIN app.follows mine ON mine.user_id = %(user_id)s AND mine.artist_id = theirs.artist_id
LEFT JOIN app.artists a ON a.id = mine.artist_id
WHERE u.id = ANY(%(neighbours)s::uuid[]) AND u.deleted_at IS NULL
GROUP BY u.id, u.display_name
