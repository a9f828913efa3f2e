-- The caller's consent to be found by other fans. Runs as the caller: RLS limits it to
-- their own row and the column grant to this column (and the profile's own columns).
UPDATE app.users SET discoverable = %(discoverable)s
WHERE id = auth.uid() AND deleted_at IS NULL
RETURNING id
