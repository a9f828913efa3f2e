-- Active keys by id, by the key's printed prefix or by the key itself (prefixes start
-- with "msk_", so a number never matches one).
UPDATE analytics.write_keys SET trust = %(trust)s
WHERE revoked_at IS NULL
  AND (id = %(id)s OR key_prefix = %(prefix)s OR key_sha256 = %(digest)s)
