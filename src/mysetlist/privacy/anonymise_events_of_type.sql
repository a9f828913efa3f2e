-- One batch of a type's events past its anonymisation age: identities and properties go,
-- the event stays (type, time, page without query string, source) for aggregates.
WITH batch AS (
  SELECT tableoid, ctid FROM analytics.user_events
  WHERE event_type = %(event_type)s
    AND created_at < now() - make_interval(days => %(days)s)
    AND (user_id IS NOT NULL OR anonymous_id IS NOT NULL OR session_id IS NOT NULL
         OR properties <> '{}'::jsonb)
  LIMIT %(batch)s
)
UPDATE analytics.user_events e
SET user_id = NULL, anonymous_id = NULL, session_id = NULL, properties = '{}'::jsonb,
    page_url = split_part(split_part(e.page_url, '?', 1), '#', 1)
-- ctid is unique only within one partition: match the partition too
FROM batch WHERE e.tableoid = batch.tableoid AND e.ctid = batch.ctid
