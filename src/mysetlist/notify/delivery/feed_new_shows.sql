-- Followers of artists with a show announced (created) within the lookback that is still
-- ahead, who have not been told yet. The date is the venue's local date.
SELECT s.id AS show_id, a.name AS artist_name, v.name AS venue_name,
       (s.starts_at AT TIME ZONE v.timezone)::date AS show_date, f.user_id
FROM app.shows s
JOIN app.artists a ON a.id = s.artist_id
JOIN app.venues v ON v.id = s.venue_id
JOIN app.follows f ON f.artist_id = s.artist_id
JOIN app.users u ON u.id = f.user_id AND u.deleted_at IS NULL
WHERE s.status = 'scheduled'
  AND s.created_at > %(now)s - make_interval(days => %(lookback_days)s)
  AND s.starts_at > %(now)s
  AND NOT EXISTS (SELECT 1 FROM notify.notifications n
                  WHERE n.user_id = f.user_id
                    AND n.dedup_key = 'new_show:show:' || s.id)
ORDER BY s.id, f.user_id
