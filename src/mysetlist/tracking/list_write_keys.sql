SELECT id, name, key_prefix, trust, created_at, revoked_at
FROM analytics.write_keys
ORDER BY id
