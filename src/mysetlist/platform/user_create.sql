-- A user (a new id unless one is given); the email encrypted, with its lookup hash.
INSERT INTO app.users (id, display_name, email_encrypted, email_hash, timezone, locale)
VALUES (coalesce(%(id)s::uuid, gen_random_uuid()), %(display_name)s, %(email_encrypted)s,
        %(email_hash)s, %(timezone)s, %(locale)s)
RETURNING id
