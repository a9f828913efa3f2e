-- Authenticated events that carry an anonymous_id or session_id link it to their user
-- (first link wins). Returns only links that are new, so earlier events are rewritten once.
WITH candidates AS (
  SELECT DISTINCT ON (kind, id) kind, id, user_id
  FROM (
    SELECT 'anonymous' AS kind, anonymous_id AS id, user_id, created_at
    FROM pg_temp.ingest_staging WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL
    UNION ALL
    SELECT 'session', session_id, user_id, created_at
    FROM pg_temp.ingest_staging WHERE user_id IS NOT NULL AND session_id IS NOT NULL
  ) c
  ORDER BY kind, id, created_at
)
INSERT INTO analytics.identity_links (kind, id, user_id)
SELECT kind, id, user_id FROM candidates
ON CONFLICT DO NOTHING
RETURNING kind, id, user_id
