-- Followers of artists whose scheduled show starts within the reminder window, with their
-- time zone (the reminder names the start in it), who have not been reminded yet.
SELECT s.id AS show_id, s.starts_at, a.name AS artist_name, v.name AS venue_name,
       f.user_id, coalesce(p.timezone, u.timezone) AS timezone
FROM app.shows s
JOIN app.artists a ON a.id = s.artist_id
JOIN app.venues v ON v.id = s.venue_id
JOIN app.follows f ON f.artist_id = s.artist_id
JOIN app.users u ON u.id = f.user_id AND u.deleted_at IS NULL
LEFT JOIN notify.user_notification_preferences p ON p.user_id = f.user_id
WHERE s.status = 'scheduled'
  AND s.starts_at > %(now)s
  AND s.starts_at <= %(now)s + make_interval(hours => %(hours)s)
  AND NOT EXISTS (SELECT 1 FROM notify.notifications n
                  WHERE n.user_id = f.user_id
                    AND n.dedup_key = 'show_reminder:show:' || s.id)
ORDER BY s.id, f.user_id
