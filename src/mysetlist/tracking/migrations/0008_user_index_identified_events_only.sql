-- The (user_id, created_at) index holds identified events only (issue 18, item 4). Every
-- query that reads it names a user: `user_id = $1` (a user's own events, the recommender's
-- row for one user) or `user_id = ANY($1)` (privacy export and erasure), and both imply
-- `user_id IS NOT NULL`, so the partial index serves them as the full one did (EXPLAIN in
-- docs/performance.md, 2026-12-04 17:25). An anonymous event (a visitor before login, a
-- browser key's event) no longer pays a B-tree insert for a NULL key that no query looks
-- up: anonymous ids are found through idx_user_events_anonymous (user_id IS NULL), session
-- ids through idx_user_events_session.
-- Rebuilds the index on every partition (writes to user_events wait while it builds).
DROP INDEX analytics.idx_user_events_user_created;
CREATE INDEX idx_user_events_user_created ON analytics.user_events (user_id, created_at DESC)
  WHERE user_id IS NOT NULL;
