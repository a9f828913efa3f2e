-- A fan's setlist prediction, as the platform app writes it (under the fan's own role).
INSERT INTO app.setlist_votes (user_id, show_id, song_id)
VALUES (auth.uid(), %(show_id)s, %(song_id)s)
ON CONFLICT (user_id, show_id, song_id) DO NOTHING
