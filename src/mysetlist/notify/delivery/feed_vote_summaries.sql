-- Voters of shows whose actual setlist has been entered (within the lookback), with how
-- many of their predictions were played, who have not had this show's summary yet.
WITH entered AS (
  SELECT s.id AS show_id, s.starts_at, a.name AS artist_name, v.name AS venue_name
  FROM app.shows s
  JOIN app.artists a ON a.id = s.artist_id
  JOIN app.venues v ON v.id = s.venue_id
  WHERE s.starts_at BETWEEN %(now)s - make_interval(days => %(lookback_days)s) AND %(now)s
    AND s.status <> 'cancelled'
    AND EXISTS (SELECT 1 FROM app.setlist_songs ss WHERE ss.show_id = s.id)
)
SELECT e.show_id, e.artist_name, e.venue_name, sv.user_id,
       count(*) AS total_votes,
       count(*) FILTER (WHERE EXISTS (
         SELECT 1 FROM app.setlist_songs ss
         WHERE ss.show_id = e.show_id AND ss.song_id = sv.song_id)) AS correct_votes
FROM entered e
JOIN app.setlist_votes sv ON sv.show_id = e.show_id
JOIN app.users u ON u.id = sv.user_id AND u.deleted_at IS NULL
WHERE NOT EXISTS (SELECT 1 FROM notify.notifications n
                  WHERE n.user_id = sv.user_id
                    AND n.dedup_key = 'vote_summary:show:' || e.show_id)
GROUP BY e.show_id, e.artist_name, e.venue_name, sv.user_id
ORDER BY e.show_id, sv.user_id
