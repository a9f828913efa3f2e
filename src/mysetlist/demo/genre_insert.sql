INSERT INTO app.genres (name) VALUES (%s) ON CONFLICT (name) DO NOTHING
