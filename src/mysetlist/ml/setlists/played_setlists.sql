-- Every completed show's setlist, per artist in date order (the model's training data).
-- The show's date is its local date at the venue; songs are ids, in setlist order.
SELECT a.id AS artist_id, a.name AS artist, s.id AS show_id,
       (s.starts_at AT TIME ZONE v.timezone)::date AS day, v.city, s.tour,
       array_agg(ss.song_id ORDER BY ss.position) AS songs
FROM app.shows s
JOIN app.artists a ON a.id = s.artist_id
JOIN app.venues v ON v.id = s.venue_id
JOIN app.setlist_songs ss ON ss.show_id = s.id
WHERE s.status = 'completed'
  AND s.starts_at < %(before)s
  AND (%(artist_id)s::bigint IS NULL OR s.artist_id = %(artist_id)s::bigint)
GROUP BY a.id, a.name, s.id, v.timezone, v.city, s.tour
ORDER BY a.id, s.starts_at, s.id
