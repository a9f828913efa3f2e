SELECT id AS artist_id, name, genres FROM app.artists WHERE id = ANY(%(ids)s)
