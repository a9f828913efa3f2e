-- The latest stored prediction of a kind for a show made before it started (none after).
SELECT p.id, p.kind, p.model, p.made_at, p.history_shows, p.voters, p.predicted_length, p.songs
FROM analytics.setlist_predictions p JOIN app.shows s ON s.id = p.show_id
WHERE p.show_id = %(show_id)s AND p.kind = %(kind)s AND p.made_at < s.starts_at
ORDER BY p.made_at DESC, p.id DESC
LIMIT 1
