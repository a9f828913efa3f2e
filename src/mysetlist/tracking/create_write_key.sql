-- A new write key: only its printed prefix and its SHA-256 are kept.
INSERT INTO analytics.write_keys (name, key_prefix, key_sha256, trust)
VALUES (%(name)s, %(prefix)s, %(digest)s, %(trust)s)
RETURNING id
