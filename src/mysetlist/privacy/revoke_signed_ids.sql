-- Revoke the server-signed ids linked to a user being erased: kept as SHA-256 of the id
-- (not the id), read by tracking when it links or renews an id (tracking/signed_ids.py).
-- The pattern is the form of a stored signed id (tracking/signed_ids.py _ID_SHAPE); ids a
-- server write key linked are the key owner's own and are not tokens, so not revoked.
INSERT INTO analytics.revoked_signed_ids (id_sha256)
SELECT sha256(convert_to(id, 'UTF8'))
FROM analytics.identity_links
WHERE user_id = %(user_id)s AND id ~ '^(anon|sess)_[A-Za-z0-9_-]{22}$'
ON CONFLICT DO NOTHING
