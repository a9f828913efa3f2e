-- The days of the events received in (since, snapshot], within the incremental window.
SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date AS d
  FROM analytics.user_events
 WHERE created_at >= %(window_start)s AND received_at > %(since)s
   AND received_at <= %(snapshot)s
 ORDER BY 1
