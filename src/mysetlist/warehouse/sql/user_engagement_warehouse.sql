-- The spec's engagement score per user and day, from daily_user_stats.
-- Params: day, scoped.
--   min(sessions/10,1)*0.3 + min(pageViews/100,1)*0.3 + min(uniquePages/20,1)*0.2
--   + min(eventTypes/10,1)*0.2
DELETE FROM analytics.user_engagement_warehouse
WHERE day = %(day)s
  AND (NOT %(scoped)s OR user_id IN (SELECT user_id FROM etl_day_scope));

INSERT INTO analytics.user_engagement_warehouse AS t (
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
  FROM analytics.daily_user_stats
  WHERE day = %(day)s
    AND (NOT %(scoped)s OR user_id IN (SELECT user_id FROM etl_day_scope))
) s
ON CONFLICT (user_id, day) DO UPDATE SET
  sessions = EXCLUDED.sessions, page_views = EXCLUDED.page_views,
  unique_pages = EXCLUDED.unique_pages, event_types = EXCLUDED.event_types,
  session_score = EXCLUDED.session_score, page_view_score = EXCLUDED.page_view_score,
  diversity_score = EXCLUDED.diversity_score, event_type_score = EXCLUDED.event_type_score,
  engagement_score = EXCLUDED.engagement_score;
