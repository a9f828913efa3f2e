-- Load daily_user_stats and user_engagement_warehouse for one day from the staged events
-- and the day's votes, in one statement: the engagement rows are computed from the rows
-- daily_user_stats just got (RETURNING), not by reading them back (that second pass cost
-- a third of the day's transform time; docs/performance.md, 2026-12-04).
-- Params: day, scoped (only the users in etl_day_scope), fresh (a first backfill: the
-- tables were empty, nothing to delete; warehouse/backfill.py). Delete-and-reinsert inside
-- the day's transaction keeps the day atomic and drops users who no longer have activity
-- (e.g. after erasure); after the delete no row of the day (or of the scoped users) is
-- left, so the inserts are plain: a duplicate key is a bug and fails the day.
DELETE FROM analytics.daily_user_stats
WHERE NOT %(fresh)s AND day = %(day)s
  AND (NOT %(scoped)s OR user_id IN (SELECT user_id FROM etl_day_scope));

DELETE FROM analytics.user_engagement_warehouse
WHERE NOT %(fresh)s AND day = %(day)s
  AND (NOT %(scoped)s OR user_id IN (SELECT user_id FROM etl_day_scope));

WITH stats AS (
INSERT INTO analytics.daily_user_stats (
  day, user_id, events, page_views, unique_pages, event_types, sessions, session_seconds,
  artist_views, show_views, searches, vote_events, votes, follows, unfollows, shares,
  notification_opens, notification_clicks, first_event_at, last_event_at)
SELECT %(day)s, coalesce(e.user_id, v.user_id),
       coalesce(e.events, 0), coalesce(e.page_views, 0), coalesce(e.unique_pages, 0),
       coalesce(e.event_types, 0), coalesce(e.sessions, 0), coalesce(e.session_seconds, 0),
       coalesce(e.artist_views, 0), coalesce(e.show_views, 0), coalesce(e.searches, 0),
       coalesce(e.vote_events, 0), coalesce(v.votes, 0), coalesce(e.follows, 0),
       coalesce(e.unfollows, 0), coalesce(e.shares, 0), coalesce(e.notification_opens, 0),
       coalesce(e.notification_clicks, 0), e.first_event_at, e.last_event_at
FROM (
  -- One pass, sorted by user: the day's groups are small (a few events each), so the
  -- per-group sorts of count(DISTINCT …) cost less than separate distinct aggregates
  -- joined back (measured on PostgreSQL 15: 96 vs 166 ms for 98,000 staged events).
  SELECT user_id,
         count(*) AS events,
         count(*) FILTER (WHERE event_type IN ('page_view', 'artist_view', 'show_view')) AS page_views,
         count(DISTINCT page) AS unique_pages,
         count(DISTINCT event_type) AS event_types,
         count(*) FILTER (WHERE session_start) AS sessions,
         sum(gap_seconds) AS session_seconds,
         count(*) FILTER (WHERE event_type = 'artist_view') AS artist_views,
         count(*) FILTER (WHERE event_type = 'show_view') AS show_views,
         count(*) FILTER (WHERE event_type = 'search') AS searches,
         count(*) FILTER (WHERE event_type = 'vote') AS vote_events,
         count(*) FILTER (WHERE event_type = 'follow') AS follows,
         count(*) FILTER (WHERE event_type = 'unfollow') AS unfollows,
         count(*) FILTER (WHERE event_type = 'share') AS shares,
         count(*) FILTER (WHERE event_type = 'notification_open') AS notification_opens,
         count(*) FILTER (WHERE event_type = 'notification_click') AS notification_clicks,
         min(created_at) AS first_event_at,
         max(created_at) AS last_event_at
  FROM etl_stage
  WHERE user_id IS NOT NULL
    AND (NOT %(scoped)s OR user_id IN (SELECT user_id FROM etl_day_scope))
  GROUP BY user_id
) e
FULL JOIN (
  SELECT user_id, count(*) AS votes FROM etl_day_votes
  WHERE NOT %(scoped)s OR user_id IN (SELECT user_id FROM etl_day_scope)
  GROUP BY user_id
) v ON v.user_id = e.user_id
RETURNING day, user_id, sessions, page_views, unique_pages, event_types
)
-- The spec's engagement score per user and day:
--   min(sessions/10,1)*0.3 + min(pageViews/100,1)*0.3 + min(uniquePages/20,1)*0.2
--   + min(eventTypes/10,1)*0.2
INSERT INTO analytics.user_engagement_warehouse (
  day, user_id, sessions, page_views, unique_pages, event_types,
  session_score, page_view_score, diversity_score, event_type_score, engagement_score)
SELECT day, user_id, sessions, page_views, unique_pages, event_types,
       ss, ps, ds, es, ss + ps + ds + es
FROM (
  SELECT day, user_id, sessions, page_views, unique_pages, event_types,
         round(least(sessions / 10.0, 1) * 0.3, 4) AS ss,
         round(least(page_views / 100.0, 1) * 0.3, 4) AS ps,
         round(least(unique_pages / 20.0, 1) * 0.2, 4) AS ds,
         round(least(event_types / 10.0, 1) * 0.2, 4) AS es
  FROM stats
) s;
