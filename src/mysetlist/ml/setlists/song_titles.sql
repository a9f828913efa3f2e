SELECT id::text AS id, title FROM app.songs WHERE artist_id = %(artist_id)s
