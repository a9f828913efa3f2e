-- No user filter on purpose: row-level security returns only the caller's follows.
SELECT f.artist_id, a.name, a.genres, f.created_at
FROM app.follows f
JOIN app.artists a ON a.id = f.artist_id
ORDER BY f.created_at DESC
