-- Record the identity links a flush's events proved (ingest decided them: a server-signed
-- id, or a server write key); the first link wins, so a later claim never moves an id.
-- Returns only links that are new, so earlier events are rewritten once.
WITH candidates AS (
  SELECT DISTINCT ON (kind, id) kind, id, user_id
  FROM unnest(%(kinds)s::text[], %(ids)s::text[], %(users)s::uuid[]) WITH ORDINALITY
    AS l(kind, id, user_id, n)
  ORDER BY kind, id, n
)
INSERT INTO analytics.identity_links (kind, id, user_id)
SELECT kind, id, user_id FROM candidates
ON CONFLICT DO NOTHING
RETURNING kind, id, user_id
