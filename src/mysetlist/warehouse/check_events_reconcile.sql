-- Days in lo..hi whose warehouse event counts differ from analytics.user_events as of
-- `snapshot` (NULL: every event received so far): all events, identified events, and the
-- identified events summed over daily_user_stats.
WITH src AS (
  SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS events,
         count(user_id) AS identified
    FROM analytics.user_events
   WHERE created_at >= %(lo)s::date::timestamp AT TIME ZONE 'UTC'
     AND created_at < (%(hi)s::date + 1)::timestamp AT TIME ZONE 'UTC'
     AND received_at <= coalesce(%(snapshot)s::timestamptz, 'infinity')
   GROUP BY 1),
wh AS (
  SELECT m.day, m.events_total, m.identified_events,
         (SELECT coalesce(sum(s.events), 0) FROM analytics.daily_user_stats s
           WHERE s.day = m.day) AS user_events
    FROM analytics.daily_platform_metrics m
   WHERE m.day BETWEEN %(lo)s AND %(hi)s)
SELECT coalesce(src.day, wh.day) AS day,
       coalesce(src.events, 0) AS source_events,
       coalesce(src.identified, 0) AS source_identified,
       wh.events_total, wh.identified_events, wh.user_events
  FROM src FULL JOIN wh ON wh.day = src.day
 WHERE wh.day IS NULL
    OR coalesce(src.events, 0) <> wh.events_total
    OR coalesce(src.identified, 0) <> wh.identified_events
    OR coalesce(src.identified, 0) <> wh.user_events
 ORDER BY 1
