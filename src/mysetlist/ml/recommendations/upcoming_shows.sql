-- Upcoming shows of the recommended artists, soonest first per artist.
SELECT s.id AS show_id, s.artist_id, s.starts_at, v.name AS venue, v.city, v.country
FROM app.shows s JOIN app.venues v ON v.id = s.venue_id
WHERE s.artist_id = ANY(%(artist_ids)s) AND s.status = 'scheduled' AND s.starts_at > now()
ORDER BY s.artist_id, s.starts_at
