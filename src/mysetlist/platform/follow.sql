INSERT INTO app.follows (user_id, artist_id) VALUES (%s, %s) ON CONFLICT DO NOTHING
