-- Which of these signed ids (by SHA-256 of the stable id) erasure revoked: never renewed.
SELECT id_sha256 FROM analytics.revoked_signed_ids WHERE id_sha256 = ANY(%(digests)s::bytea[])
