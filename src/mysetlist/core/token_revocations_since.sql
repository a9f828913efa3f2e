-- Rows revoked since the last read, with an overlap: `revoked_at` is its transaction's start,
-- so a revocation that committed after a later one started is read on the next pass.
SELECT user_key, extract(epoch FROM valid_after)::float8 AS valid_after, revoked_at
FROM analytics.token_revocations
WHERE %(since)s::timestamptz IS NULL OR revoked_at > %(since)s::timestamptz - interval '5 minutes'
