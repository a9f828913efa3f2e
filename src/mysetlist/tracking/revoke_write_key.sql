-- Active keys by id, by the key's printed prefix or by the key itself (as set_write_key_trust.sql).
UPDATE analytics.write_keys SET revoked_at = now()
WHERE revoked_at IS NULL
  AND (id = %(id)s OR key_prefix = %(prefix)s OR key_sha256 = %(digest)s)
