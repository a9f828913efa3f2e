-- One page of a user's events, newest first (keyset on (created_at, event_id)).
-- Runs as the viewer under RLS; the user_id filter is the query, the policy the guard.
SELECT event_id, message_id, user_id, anonymous_id, session_id, event_type, page_url,
       properties, source, created_at, received_at
FROM analytics.user_events
WHERE user_id = %(user_id)s
  AND (%(types)s::text[] IS NULL OR event_type = ANY(%(types)s::text[]))
  AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s::timestamptz)
  AND (%(cursor_ts)s::timestamptz IS NULL
       OR (created_at, event_id) < (%(cursor_ts)s::timestamptz, %(cursor_id)s::uuid))
ORDER BY created_at DESC, event_id DESC
LIMIT %(limit)s
