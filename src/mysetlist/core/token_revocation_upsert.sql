-- Tokens issued before the next whole second are refused (a JWT's `iat` is whole seconds:
-- a token issued earlier in this second may predate the revocation). Never moves back.
INSERT INTO analytics.token_revocations (user_key, valid_after)
VALUES (%(user_key)s, date_trunc('second', now()) + interval '1 second')
ON CONFLICT (user_key) DO UPDATE
  SET valid_after = greatest(analytics.token_revocations.valid_after, EXCLUDED.valid_after),
      revoked_at = now()
RETURNING extract(epoch FROM valid_after)::float8 AS valid_after
