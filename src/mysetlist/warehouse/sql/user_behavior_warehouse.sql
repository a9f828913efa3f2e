-- One row per user the run touched (temp table etl_scope, kind 'user'), recomputed from
-- all of that user's daily_user_stats and user_engagement_warehouse rows plus their
-- user-grain row in voting_patterns_warehouse (run voting_patterns first).
-- engagement_score = sum of daily engagement over last_active_day-29 .. last_active_day / 30.
-- Params: full (every user of a daily or range run's scope: one grouped join).
DELETE FROM analytics.user_behavior_warehouse
WHERE user_id IN (SELECT user_id FROM etl_scope WHERE kind = 'user');

INSERT INTO analytics.user_behavior_warehouse AS t (
  user_id, first_active_day, last_active_day, active_days, events, sessions, page_views,
  searches, votes, follows, unfollows, avg_session_seconds, engagement_score,
  votes_on_happened_shows, correct_votes, voting_accuracy)
SELECT s.user_id, s.first_day, s.last_day, s.active_days, s.events, s.sessions, s.page_views,
       s.searches, s.votes, s.follows, s.unfollows,
       CASE WHEN s.sessions > 0 THEN round(s.session_seconds::numeric / s.sessions, 2) END,
       coalesce((
         SELECT round(sum(e.engagement_score) / 30, 4)
         FROM analytics.user_engagement_warehouse e
         WHERE e.user_id = s.user_id AND e.day BETWEEN s.last_day - 29 AND s.last_day
       ), 0),
       coalesce(v.votes_on_happened_shows, 0), coalesce(v.correct_votes, 0), v.accuracy
FROM (
  SELECT d.user_id, min(d.day) AS first_day, max(d.day) AS last_day, count(*) AS active_days,
         sum(d.events) AS events, sum(d.sessions) AS sessions, sum(d.page_views) AS page_views,
         sum(d.searches) AS searches, sum(d.votes) AS votes, sum(d.follows) AS follows,
         sum(d.unfollows) AS unfollows, sum(d.session_seconds) AS session_seconds
  FROM etl_scope sc
  JOIN analytics.daily_user_stats d ON d.user_id = sc.user_id
  WHERE %(full)s AND sc.kind = 'user'
  GROUP BY d.user_id
  UNION ALL
  -- Incremental runs (a few thousand users): each user's rows through the primary key;
  -- the join above gets planned as a hash of every row of the table.
  SELECT sc.user_id, d.*
  FROM etl_scope sc
  CROSS JOIN LATERAL (
    SELECT min(d.day) AS first_day, max(d.day) AS last_day, count(*) AS active_days,
           sum(d.events) AS events, sum(d.sessions) AS sessions,
           sum(d.page_views) AS page_views, sum(d.searches) AS searches, sum(d.votes) AS votes,
           sum(d.follows) AS follows, sum(d.unfollows) AS unfollows,
           sum(d.session_seconds) AS session_seconds
    FROM analytics.daily_user_stats d WHERE d.user_id = sc.user_id
  ) d
  WHERE NOT %(full)s AND sc.kind = 'user' AND d.active_days > 0
) s
LEFT JOIN analytics.voting_patterns_warehouse v
  ON v.grain = 'user' AND v.scope_id = s.user_id::text
ON CONFLICT (user_id) DO UPDATE SET
  first_active_day = EXCLUDED.first_active_day, last_active_day = EXCLUDED.last_active_day,
  active_days = EXCLUDED.active_days, events = EXCLUDED.events, sessions = EXCLUDED.sessions,
  page_views = EXCLUDED.page_views, searches = EXCLUDED.searches, votes = EXCLUDED.votes,
  follows = EXCLUDED.follows, unfollows = EXCLUDED.unfollows,
  avg_session_seconds = EXCLUDED.avg_session_seconds,
  engagement_score = EXCLUDED.engagement_score,
  votes_on_happened_shows = EXCLUDED.votes_on_happened_shows,
  correct_votes = EXCLUDED.correct_votes, voting_accuracy = EXCLUDED.voting_accuracy;
