-- Extract: one day's events (plus the 30 minutes before it, so a session that started
-- before midnight is not counted again) into a transaction-local staging table, with the
-- session rule applied: an event more than 30 minutes after the same visitor's previous
-- event starts a new session. Events received after the run's snapshot are left for the
-- next run. Params: day_start, day_end, stage_start (day_start - 30 minutes, computed by
-- the caller: a constant bound prunes the earlier partitions when the statement is
-- planned, where `day_start - interval` (not immutable) left all of them to be planned
-- and pruned only at executor start), snapshot (timestamptz), scoped (bool).
-- When scoped (incremental runs), only the users in etl_day_scope (and anonymous
-- visitors) get the session window; other users' rows carry session_start NULL and are
-- used only for the day's artist, show and platform totals.
CREATE TEMP TABLE etl_stage ON COMMIT DROP AS
WITH src AS NOT MATERIALIZED (
  SELECT e.user_id, e.anonymous_id, e.event_type,
         nullif(split_part(split_part(e.page_url, '#', 1), '?', 1), '') AS page,
         CASE WHEN e.event_type IN ('artist_view', 'follow', 'unfollow')
                   AND e.properties ->> 'artist_id' ~ '^[0-9]{1,18}$'
              THEN (e.properties ->> 'artist_id')::bigint END AS artist_id,
         CASE WHEN e.event_type IN ('show_view', 'share')
                   AND e.properties ->> 'show_id' ~ '^[0-9]{1,18}$'
              THEN (e.properties ->> 'show_id')::bigint END AS show_id,
         e.created_at
  FROM analytics.user_events e
  WHERE e.created_at >= %(stage_start)s
    AND e.created_at < %(day_end)s
    AND e.received_at <= %(snapshot)s
),
windowed AS (
  SELECT src.*,
         lag(created_at) OVER (
           PARTITION BY user_id, CASE WHEN user_id IS NULL THEN anonymous_id END
           ORDER BY created_at) AS prev_at
  FROM src
  WHERE NOT %(scoped)s OR user_id IS NULL
     OR user_id IN (SELECT user_id FROM etl_day_scope)
)
SELECT user_id, anonymous_id, event_type, page, artist_id, show_id, created_at,
       (prev_at IS NULL OR created_at - prev_at > interval '30 minutes') AS session_start,
       CASE WHEN prev_at IS NOT NULL AND created_at - prev_at <= interval '30 minutes'
            THEN extract(epoch FROM created_at - prev_at)::bigint ELSE 0 END AS gap_seconds
FROM windowed
WHERE created_at >= %(day_start)s
UNION ALL
SELECT user_id, anonymous_id, event_type, page, artist_id, show_id, created_at, NULL, 0
FROM src
WHERE %(scoped)s AND created_at >= %(day_start)s AND user_id IS NOT NULL
  AND user_id NOT IN (SELECT user_id FROM etl_day_scope);

-- The day's votes from the platform (the system of record for votes).
CREATE TEMP TABLE etl_day_votes ON COMMIT DROP AS
SELECT v.user_id, v.show_id, s.artist_id
FROM app.setlist_votes v
JOIN app.shows s ON s.id = v.show_id
WHERE v.created_at >= %(day_start)s AND v.created_at < %(day_end)s;
