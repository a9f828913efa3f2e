-- The cast of the live simulation: fans of the world who can be reached (not erased,
-- verified address), with the artists each follows.
SELECT u.id::text AS user_id,
       coalesce(array_agg(f.artist_id) FILTER (WHERE f.artist_id IS NOT NULL), '{}') AS artists
FROM app.users u
LEFT JOIN app.follows f ON f.user_id = u.id
WHERE u.deleted_at IS NULL AND u.email_verified_at IS NOT NULL AND u.id <> %(operator)s
GROUP BY u.id
ORDER BY u.id
LIMIT %(limit)s
