-- The scheduled shows nearest to now (the world's next ones), with their artist, venue and
-- the artist's songs: what live fans view, vote on, and what "starts".
SELECT s.id, s.artist_id, s.starts_at, a.name AS artist, v.name AS venue, v.city,
       (SELECT coalesce(array_agg(g.id ORDER BY g.id), '{}') FROM app.songs g
        WHERE g.artist_id = s.artist_id) AS songs
FROM app.shows s
JOIN app.artists a ON a.id = s.artist_id
JOIN app.venues v ON v.id = s.venue_id
WHERE s.status = 'scheduled'
ORDER BY abs(extract(epoch FROM s.starts_at - now())), s.id
LIMIT %(limit)s
