-- The show to predict, with what is known before it: local date, city, tour; and how many
-- completed shows of the artist precede it (a stored prediction is stale once this grows).
SELECT s.id, s.artist_id, s.starts_at, s.status, s.tour, v.city,
       (s.starts_at AT TIME ZONE v.timezone)::date AS day,
       s.status = 'scheduled' AND s.starts_at > now() AS upcoming,
       (SELECT count(*) FROM app.shows p
        WHERE p.artist_id = s.artist_id AND p.status = 'completed' AND p.starts_at < s.starts_at
          AND EXISTS (SELECT 1 FROM app.setlist_songs ss WHERE ss.show_id = p.id))::integer
         AS history_shows
FROM app.shows s JOIN app.venues v ON v.id = s.venue_id
WHERE s.id = %(show_id)s
