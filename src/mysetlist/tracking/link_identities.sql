-- Record the identity links a flush's events proved (ingest decided them: a valid signed
-- token, or a server write key); the first link wins, so a later claim never moves an id.
-- A server-issued id that erasure revoked never links again (revoked_signed_ids).
-- Returns only links that are new, so earlier events are rewritten once.
WITH candidates AS (
  SELECT DISTINCT ON (kind, id) kind, id, user_id
  FROM unnest(%(kinds)s::text[], %(ids)s::text[], %(users)s::uuid[]) WITH ORDINALITY
    AS l(kind, id, user_id, n)
  ORDER BY kind, id, n
)
INSERT INTO analytics.identity_links (kind, id, user_id)
SELECT kind, id, user_id FROM candidates c
WHERE NOT EXISTS (
  SELECT 1 FROM analytics.revoked_signed_ids r
  WHERE r.id_sha256 = sha256(convert_to(c.id, 'UTF8'))
)
ON CONFLICT DO NOTHING
RETURNING kind, id, user_id
