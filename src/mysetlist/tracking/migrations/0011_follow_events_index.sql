-- A partial index for the ML features build's follow/unfollow read (issue 18): migration
-- 0010 dropped the (event_type, created_at) index, after which
-- ml/features/recommendation_features.sql read every partition for follow/unfollow events
-- over all history. Follows are a small share of events, so only they pay this B-tree
-- insert at ingest. The query's follow branch repeats this predicate literally so the
-- planner can use it (docs/performance.md).
-- Builds the index on every partition (writes to user_events wait while it builds).
CREATE INDEX idx_user_events_follows ON analytics.user_events (user_id, created_at)
  WHERE event_type IN ('follow', 'unfollow') AND user_id IS NOT NULL;
