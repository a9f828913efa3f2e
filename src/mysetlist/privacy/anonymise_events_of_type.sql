-- One batch of a type's events past its anonymisation age: identities and properties go,
-- the event stays (type, time, page without query string, source) for aggregates.
-- Incremental like tracking's delete_expired_events_of_type.sql (no (event_type,
-- created_at) index): events newly past the age since the last run's mark %(since)s, by
-- created_at, or received since it with an older client time; since = the epoch
-- (core.watermarks.EPOCH) the first time for a (type, days) pair. %(now)s is fixed for all batches of one run.
WITH batch AS (
  SELECT tableoid, ctid FROM analytics.user_events
  WHERE event_type = %(event_type)s
    AND created_at < %(now)s - make_interval(days => %(days)s)
    AND (created_at >= %(since)s - make_interval(days => %(days)s) OR received_at >= %(since)s)
    AND (user_id IS NOT NULL OR anonymous_id IS NOT NULL OR session_id IS NOT NULL
         OR properties <> '{}'::jsonb)
  LIMIT %(batch)s
)
UPDATE analytics.user_events e
SET user_id = NULL, anonymous_id = NULL, session_id = NULL, properties = '{}'::jsonb,
    page_url = split_part(split_part(e.page_url, '?', 1), '#', 1)
-- ctid is unique only within one partition: match the partition too. The type and cutoff
-- again so the target side reads only those partitions' rows of the type (measured on 1.8M
-- events in 69 partitions: 1.43 -> 0.69 s per batch of 5,000).
FROM batch WHERE e.tableoid = batch.tableoid AND e.ctid = batch.ctid
  AND e.event_type = %(event_type)s AND e.created_at < %(now)s - make_interval(days => %(days)s)
