-- Platform totals for one day (all events, identified and anonymous). Sessions: the
-- identified users' sessions from daily_user_stats plus the anonymous visitors'. wau, mau and
-- stickiness need the surrounding days and are set by the platform_windows step.
-- Params: day, day_start, day_end.
INSERT INTO analytics.daily_platform_metrics AS t (
  day, events_total, identified_events, anonymous_events, active_users, wau, mau, stickiness,
  new_users, sessions, page_views, searches, votes, follows, unfollows, shares,
  avg_engagement_score, avg_session_seconds)
SELECT %(day)s, ev.total, ev.identified, ev.total - ev.identified, us.active_users,
       NULL, NULL, NULL,
       (SELECT count(*) FROM app.users u
         WHERE u.created_at >= %(day_start)s AND u.created_at < %(day_end)s),
       us.sessions + ev.anonymous_sessions, ev.page_views, ev.searches,
       (SELECT count(*) FROM etl_day_votes),
       ev.follows, ev.unfollows, ev.shares,
       (SELECT round(avg(engagement_score), 4) FROM analytics.user_engagement_warehouse
         WHERE day = %(day)s),
       CASE WHEN us.sessions + ev.anonymous_sessions > 0
            THEN round((us.session_seconds + ev.anonymous_session_seconds)::numeric
                       / (us.sessions + ev.anonymous_sessions), 2) END
FROM (
  SELECT count(*) AS total,
         count(user_id) AS identified,
         count(*) FILTER (WHERE session_start AND user_id IS NULL) AS anonymous_sessions,
         coalesce(sum(gap_seconds) FILTER (WHERE user_id IS NULL), 0) AS anonymous_session_seconds,
         count(*) FILTER (WHERE event_type IN ('page_view', 'artist_view', 'show_view')) AS page_views,
         count(*) FILTER (WHERE event_type = 'search') AS searches,
         count(*) FILTER (WHERE event_type = 'follow') AS follows,
         count(*) FILTER (WHERE event_type = 'unfollow') AS unfollows,
         count(*) FILTER (WHERE event_type = 'share') AS shares
  FROM etl_stage
) ev
CROSS JOIN (
  SELECT count(*)::integer AS active_users, coalesce(sum(sessions), 0) AS sessions,
         coalesce(sum(session_seconds), 0) AS session_seconds
  FROM analytics.daily_user_stats WHERE day = %(day)s
) us
ON CONFLICT (day) DO UPDATE SET
  events_total = EXCLUDED.events_total, identified_events = EXCLUDED.identified_events,
  anonymous_events = EXCLUDED.anonymous_events, active_users = EXCLUDED.active_users,
  wau = NULL, mau = NULL, stickiness = NULL, new_users = EXCLUDED.new_users,
  sessions = EXCLUDED.sessions, page_views = EXCLUDED.page_views,
  searches = EXCLUDED.searches, votes = EXCLUDED.votes, follows = EXCLUDED.follows,
  unfollows = EXCLUDED.unfollows, shares = EXCLUDED.shares,
  avg_engagement_score = EXCLUDED.avg_engagement_score,
  avg_session_seconds = EXCLUDED.avg_session_seconds;

-- Record the day as loaded (atomically with its data). Params: run_id, day_end. The
-- staged events are the day's events_total just written (not a second count of the
-- staging table: a pass over every staged event).
INSERT INTO analytics.etl_loaded_days (day, run_id, loaded_at, events, partial)
SELECT %(day)s, %(run_id)s, now(), m.events_total, now() < %(day_end)s
FROM analytics.daily_platform_metrics m WHERE m.day = %(day)s
ON CONFLICT (day) DO UPDATE SET
  run_id = EXCLUDED.run_id, loaded_at = EXCLUDED.loaded_at, events = EXCLUDED.events,
  partial = EXCLUDED.partial;
