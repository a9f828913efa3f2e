-- A fan follows an artist, as the platform app writes it (under the fan's own role).
INSERT INTO app.follows (user_id, artist_id)
VALUES (auth.uid(), %(artist_id)s)
ON CONFLICT (user_id, artist_id) DO NOTHING
