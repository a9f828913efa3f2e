-- The caller's own row; RLS would also hide everyone else's (operators see all users,
-- hence the explicit auth.uid()).
SELECT id, display_name, timezone, locale, discoverable, created_at, last_active_at
FROM app.users
WHERE id = auth.uid()
