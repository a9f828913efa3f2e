-- What a model prediction of the show is computed from, as one digest: the show's local
-- date, city and tour and the artist's setlists played before it (the rows
-- played_setlists.sql gives the model). Same digest, same prediction: it is stored once.
WITH target AS (
  SELECT s.id, s.artist_id, s.starts_at, s.tour, v.city,
         (s.starts_at AT TIME ZONE v.timezone)::date AS day
  FROM app.shows s JOIN app.venues v ON v.id = s.venue_id
  WHERE s.id = %(show_id)s
), history AS (
  SELECT p.id, p.starts_at, pv.city, p.tour, (p.starts_at AT TIME ZONE pv.timezone)::date AS day,
         array_agg(ss.song_id ORDER BY ss.position) AS songs
  FROM target t
  JOIN app.shows p ON p.artist_id = t.artist_id AND p.status = 'completed'
                  AND p.starts_at < t.starts_at
  JOIN app.venues pv ON pv.id = p.venue_id
  JOIN app.setlist_songs ss ON ss.show_id = p.id
  GROUP BY p.id, p.starts_at, pv.city, pv.timezone, p.tour
)
SELECT md5(concat_ws('|', t.day, t.city, t.tour,
         (SELECT string_agg(concat_ws(',', h.id, h.day, h.city, h.tour, h.songs::text), ';'
                            ORDER BY h.starts_at, h.id)
          FROM history h))) AS digest
FROM target t
