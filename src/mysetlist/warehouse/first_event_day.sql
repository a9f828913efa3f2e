-- The UTC day of the oldest event created since %(since)s (NULL without events).
SELECT (min(created_at) AT TIME ZONE 'UTC')::date AS day
  FROM analytics.user_events WHERE created_at >= %(since)s
