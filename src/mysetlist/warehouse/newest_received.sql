-- The newest `received_at` of the events created since %(since)s, or when that is NULL
-- since the start of yesterday (UTC): how far ingest got, for incremental runs.
SELECT max(received_at) AS newest FROM analytics.user_events
 WHERE created_at >= coalesce(%(since)s::timestamptz,
                              ((now() AT TIME ZONE 'UTC')::date - 1)::timestamp AT TIME ZONE 'UTC')
