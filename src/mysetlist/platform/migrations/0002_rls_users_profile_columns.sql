-- A fan may edit their own profile (name, time zone, locale) and nothing else on their row:
-- the id, the verified email (its ciphertext and lookup hash), erasure (deleted_at) and
-- activity bookkeeping are written by the service as the owner role. A table-wide UPDATE
-- let a user set email_hash to the hash of an address they do not own (taking over the
-- email lookup) or clear their own deleted_at. RLS still limits the update to their own row.
REVOKE UPDATE ON app.users FROM authenticated;
GRANT UPDATE (display_name, timezone, locale) ON app.users TO authenticated;
