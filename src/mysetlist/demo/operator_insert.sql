-- The operator the demo prints a token for, as a user (its /api/me answers).
INSERT INTO app.users (id, display_name) VALUES (%s, 'Demo operator')
ON CONFLICT (id) DO NOTHING
