-- The trust level of an active (unrevoked) write key, by the SHA-256 of the key.
SELECT trust FROM analytics.write_keys
WHERE key_sha256 = %(digest)s AND revoked_at IS NULL
