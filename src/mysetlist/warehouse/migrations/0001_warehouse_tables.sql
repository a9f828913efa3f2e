-- The analytics warehouse: day-grained facts loaded per day (one transaction per day) and
-- entity-level rollups derived from them. Loaded by mysetlist.warehouse.pipeline from
-- analytics.user_events and the app schema; every table the spec names, under that name.
--
-- Per-user tables carry user_id, have RLS enabled and forced, and use the spec's policy;
-- platform-wide tables are public (readable by anon and authenticated).

SET LOCAL search_path = analytics, public;

-- One row per user and UTC day with any activity (events, or votes in app.setlist_votes).
-- sessions: a session starts at an event more than 30 minutes after the user's previous
-- event (any day), so a session spanning midnight counts once, on the day it started.
-- page_views: page_view, artist_view and show_view events. unique_pages: distinct
-- page_url with query string and fragment removed. votes: app.setlist_votes created that day.
CREATE TABLE daily_user_stats (
  day              date NOT NULL,
  user_id          uuid NOT NULL,
  events           integer NOT NULL,
  page_views       integer NOT NULL,
  unique_pages     integer NOT NULL,
  event_types      integer NOT NULL,
  sessions         integer NOT NULL,
  session_seconds  bigint NOT NULL,
  artist_views     integer NOT NULL,
  show_views       integer NOT NULL,
  searches         integer NOT NULL,
  vote_events      integer NOT NULL,
  votes            integer NOT NULL,
  follows          integer NOT NULL,
  unfollows        integer NOT NULL,
  shares           integer NOT NULL,
  notification_opens   integer NOT NULL,
  notification_clicks  integer NOT NULL,
  first_event_at   timestamptz,
  last_event_at    timestamptz,
  PRIMARY KEY (user_id, day)
);
CREATE INDEX daily_user_stats_day_idx ON daily_user_stats (day);

-- The spec's engagement score per user and day:
--   min(sessions/10,1)*0.3 + min(page_views/100,1)*0.3 + min(unique_pages/20,1)*0.2
--   + min(event_types/10,1)*0.2
CREATE TABLE user_engagement_warehouse (
  day               date NOT NULL,
  user_id           uuid NOT NULL,
  sessions          integer NOT NULL,
  page_views        integer NOT NULL,
  unique_pages      integer NOT NULL,
  event_types       integer NOT NULL,
  session_score     numeric(6,4) NOT NULL,
  page_view_score   numeric(6,4) NOT NULL,
  diversity_score   numeric(6,4) NOT NULL,
  event_type_score  numeric(6,4) NOT NULL,
  engagement_score  numeric(6,4) NOT NULL,
  PRIMARY KEY (user_id, day)
);
CREATE INDEX user_engagement_warehouse_day_idx ON user_engagement_warehouse (day);

-- One row per user: lifetime behaviour, recomputed from daily_user_stats and
-- voting_patterns_warehouse for every user the run touched.
-- engagement_score: the mean daily engagement score over the 30 calendar days ending at
-- the user's last active day (days without activity count as 0).
CREATE TABLE user_behavior_warehouse (
  user_id              uuid PRIMARY KEY,
  first_active_day     date NOT NULL,
  last_active_day      date NOT NULL,
  active_days          integer NOT NULL,
  events               bigint NOT NULL,
  sessions             bigint NOT NULL,
  page_views           bigint NOT NULL,
  searches             bigint NOT NULL,
  votes                bigint NOT NULL,
  follows              bigint NOT NULL,
  unfollows            bigint NOT NULL,
  avg_session_seconds  numeric(12,2),
  engagement_score     numeric(6,4) NOT NULL,
  votes_on_happened_shows  bigint NOT NULL,
  correct_votes        bigint NOT NULL,
  voting_accuracy      numeric(6,4)
);
CREATE INDEX idx_user_behavior_engagement ON user_behavior_warehouse (engagement_score DESC);

-- Voting accuracy at three grains: 'user' (user_id), 'show' (show_id, artist_id) and
-- 'artist' (artist_id). accuracy = correct_votes / votes_on_happened_shows, where a show
-- has happened when it is not cancelled and is completed or has an actual setlist, and a
-- vote is correct when its song is in that show's actual setlist (app.setlist_songs).
CREATE TABLE voting_patterns_warehouse (
  grain                    text NOT NULL CHECK (grain IN ('user', 'show', 'artist')),
  scope_id                 text NOT NULL,   -- the user, show or artist id as text
  user_id                  uuid,
  show_id                  bigint,
  artist_id                bigint,
  votes                    bigint NOT NULL,
  voters                   bigint NOT NULL,
  shows_voted              bigint NOT NULL,
  votes_on_happened_shows  bigint NOT NULL,
  correct_votes            bigint NOT NULL,
  accuracy                 numeric(6,4),
  first_vote_at            timestamptz,
  last_vote_at             timestamptz,
  PRIMARY KEY (grain, scope_id),
  CHECK ((grain = 'user') = (user_id IS NOT NULL))
);
CREATE INDEX voting_patterns_user_idx ON voting_patterns_warehouse (user_id) WHERE user_id IS NOT NULL;

-- One row per artist and day with activity (or with activity in the 7 days before, once
-- the trending step has run). activity = artist_views + show_views + 2*votes + 5*follows.
-- trending_score (set by the trending step, see sql/trending.sql):
--   recent_avg   = sum(activity over day-6 .. day) / 7
--   baseline_avg = sum(activity over day-34 .. day-7) / 28
--   trending_score = (recent_avg + 1) / (baseline_avg + 1) - 1
-- i.e. growth against the artist's own trailing baseline, with +1 additive smoothing so a
-- handful of views on an unknown artist does not outrank a real surge; 0 means flat.
CREATE TABLE artist_popularity_warehouse (
  artist_id        bigint NOT NULL,
  day              date NOT NULL,
  artist_views     integer NOT NULL DEFAULT 0,
  show_views       integer NOT NULL DEFAULT 0,
  unique_fans      integer NOT NULL DEFAULT 0,
  follows          integer NOT NULL DEFAULT 0,
  unfollows        integer NOT NULL DEFAULT 0,
  votes            integer NOT NULL DEFAULT 0,
  activity         integer NOT NULL DEFAULT 0,
  recent_avg       numeric(14,4),
  baseline_avg     numeric(14,4),
  trending_score   numeric(14,4),
  PRIMARY KEY (artist_id, day)
);
CREATE INDEX artist_popularity_day_idx ON artist_popularity_warehouse (day);
CREATE INDEX idx_artist_popularity_trending ON artist_popularity_warehouse (trending_score DESC);

-- One row per show and day with activity.
CREATE TABLE show_engagement_warehouse (
  show_id          bigint NOT NULL,
  day              date NOT NULL,
  artist_id        bigint NOT NULL,
  views            integer NOT NULL,
  unique_viewers   integer NOT NULL,
  votes            integer NOT NULL,
  unique_voters    integer NOT NULL,
  shares           integer NOT NULL,
  engagement       integer NOT NULL,   -- views + 2*votes + 3*shares
  PRIMARY KEY (show_id, day)
);
CREATE INDEX show_engagement_day_idx ON show_engagement_warehouse (day);

-- Platform totals per UTC day, partitioned by month (partitions made by
-- analytics.ensure_platform_metrics_partitions; a default partition catches the rest).
-- wau / mau: distinct active users over day-6..day / day-29..day; stickiness = dau / mau.
CREATE TABLE daily_platform_metrics (
  day                   date NOT NULL,
  events_total          bigint NOT NULL,
  identified_events     bigint NOT NULL,
  anonymous_events      bigint NOT NULL,
  active_users          integer NOT NULL,   -- DAU
  wau                   integer,
  mau                   integer,
  stickiness            numeric(6,4),
  new_users             integer NOT NULL,
  sessions              bigint NOT NULL,
  page_views            bigint NOT NULL,
  searches              bigint NOT NULL,
  votes                 bigint NOT NULL,
  follows               bigint NOT NULL,
  unfollows             bigint NOT NULL,
  shares                bigint NOT NULL,
  avg_engagement_score  numeric(6,4),
  avg_session_seconds   numeric(12,2),
  PRIMARY KEY (day)
) PARTITION BY RANGE (day);
CREATE TABLE daily_platform_metrics_default PARTITION OF daily_platform_metrics DEFAULT;

CREATE OR REPLACE FUNCTION analytics.ensure_platform_metrics_partitions(from_day date, to_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  m date := date_trunc('month', from_day)::date;
  part text;
  created integer := 0;
BEGIN
  WHILE m <= to_day LOOP
    part := 'daily_platform_metrics_' || to_char(m, 'YYYYMM');
    IF to_regclass('analytics.' || part) IS NULL THEN
      CREATE TEMP TABLE IF NOT EXISTS _moved_metrics
        (LIKE analytics.daily_platform_metrics) ON COMMIT DROP;
      WITH moved AS (
        DELETE FROM analytics.daily_platform_metrics_default
        WHERE day >= m AND day < (m + interval '1 month')::date RETURNING *)
      INSERT INTO _moved_metrics SELECT * FROM moved;
      EXECUTE format(
        'CREATE TABLE analytics.%I PARTITION OF analytics.daily_platform_metrics FOR VALUES FROM (%L) TO (%L)',
        part, m, (m + interval '1 month')::date);
      INSERT INTO analytics.daily_platform_metrics SELECT * FROM _moved_metrics;
      TRUNCATE _moved_metrics;
      created := created + 1;
    END IF;
    m := (m + interval '1 month')::date;
  END LOOP;
  RETURN created;
END
$$;
-- PERFORM, not SELECT: yoyo prints the result of a SELECT in a migration.
DO $$ BEGIN
  PERFORM analytics.ensure_platform_metrics_partitions(
    (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '3 months')::date,
    (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')::date);
END $$;

-- Materialized views for the dashboard's heavy queries. Unique indexes make
-- REFRESH MATERIALIZED VIEW CONCURRENTLY possible (readers are never blocked).

-- Weekly signup cohorts (ISO week of app.users.created_at). week_number k counts the
-- cohort's users active (a daily_user_stats row) on days signup_day+7k .. signup_day+7k+6
-- of their own signup day. A (cohort, week) appears once that week has started for the
-- cohort's first signup day within the loaded data (max day in daily_user_stats).
CREATE MATERIALIZED VIEW cohort_retention_weekly AS
WITH horizon AS (SELECT max(day) AS last_day FROM analytics.daily_user_stats),
members AS (
  SELECT u.id AS user_id, (u.created_at AT TIME ZONE 'UTC')::date AS signup_day,
         date_trunc('week', u.created_at AT TIME ZONE 'UTC')::date AS cohort_week
  FROM app.users u
  WHERE u.deleted_at IS NULL
),
cohorts AS (
  SELECT cohort_week, count(*) AS cohort_size, min(signup_day) AS first_signup_day
  FROM members GROUP BY cohort_week
),
activity AS (
  SELECT m.cohort_week, (s.day - m.signup_day) / 7 AS week_number,
         count(DISTINCT s.user_id) AS active_users
  FROM members m
  JOIN analytics.daily_user_stats s
    ON s.user_id = m.user_id AND s.day >= m.signup_day AND s.day < m.signup_day + 91
  GROUP BY 1, 2
)
SELECT c.cohort_week, w.week_number, c.cohort_size,
       coalesce(a.active_users, 0) AS active_users,
       round(coalesce(a.active_users, 0)::numeric / c.cohort_size, 4) AS retention_rate
FROM cohorts c
CROSS JOIN generate_series(0, 12) AS w(week_number)
CROSS JOIN horizon h
LEFT JOIN activity a ON a.cohort_week = c.cohort_week AND a.week_number = w.week_number
WHERE h.last_day IS NOT NULL AND c.first_signup_day + 7 * w.week_number <= h.last_day;
CREATE UNIQUE INDEX cohort_retention_weekly_key ON cohort_retention_weekly (cohort_week, week_number);

-- Genre trends per day: artist activity summed over each of the artist's genres.
CREATE MATERIALIZED VIEW genre_trends_daily AS
SELECT g.genre, p.day,
       count(DISTINCT p.artist_id) AS active_artists,
       sum(p.artist_views)::bigint AS artist_views,
       sum(p.show_views)::bigint AS show_views,
       sum(p.votes)::bigint AS votes,
       sum(p.follows)::bigint AS follows,
       sum(p.activity)::bigint AS activity,
       round(avg(p.trending_score), 4) AS avg_trending_score
FROM analytics.artist_popularity_warehouse p
JOIN app.artists a ON a.id = p.artist_id
CROSS JOIN LATERAL unnest(a.genres) AS g(genre)
GROUP BY g.genre, p.day;
CREATE UNIQUE INDEX genre_trends_daily_key ON genre_trends_daily (genre, day);

-- Access. Platform-wide tables are public; per-user tables only through RLS.
GRANT SELECT ON artist_popularity_warehouse, show_engagement_warehouse, daily_platform_metrics,
  cohort_retention_weekly, genre_trends_daily TO anon, authenticated;
GRANT SELECT ON daily_user_stats, user_engagement_warehouse, user_behavior_warehouse,
  voting_patterns_warehouse TO authenticated;
GRANT ALL ON daily_user_stats, user_engagement_warehouse, user_behavior_warehouse,
  voting_patterns_warehouse, artist_popularity_warehouse, show_engagement_warehouse,
  daily_platform_metrics TO service_role;
GRANT SELECT ON cohort_retention_weekly, genre_trends_daily TO service_role;

ALTER TABLE user_behavior_warehouse ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_behavior_warehouse FORCE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own analytics" ON user_behavior_warehouse FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Operators can view all analytics" ON user_behavior_warehouse FOR SELECT
  USING (auth.is_admin());

ALTER TABLE daily_user_stats ENABLE ROW LEVEL SECURITY;
ALTER TABLE daily_user_stats FORCE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own analytics" ON daily_user_stats FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Operators can view all analytics" ON daily_user_stats FOR SELECT
  USING (auth.is_admin());

ALTER TABLE user_engagement_warehouse ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_engagement_warehouse FORCE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own analytics" ON user_engagement_warehouse FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Operators can view all analytics" ON user_engagement_warehouse FOR SELECT
  USING (auth.is_admin());

-- Show- and artist-grain accuracy is public; user-grain rows only to their user.
ALTER TABLE voting_patterns_warehouse ENABLE ROW LEVEL SECURITY;
ALTER TABLE voting_patterns_warehouse FORCE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own analytics" ON voting_patterns_warehouse FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Public accuracy by show and artist" ON voting_patterns_warehouse FOR SELECT
  USING (grain <> 'user');
CREATE POLICY "Operators can view all analytics" ON voting_patterns_warehouse FOR SELECT
  USING (auth.is_admin());

-- The owner role (the ETL) keeps full access where it is not a superuser.
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['user_behavior_warehouse', 'daily_user_stats',
                           'user_engagement_warehouse', 'voting_patterns_warehouse'] LOOP
    EXECUTE format(
      'CREATE POLICY "Owner role full access" ON analytics.%I FOR ALL TO %I USING (true) WITH CHECK (true)',
      t, current_user);
  END LOOP;
END
$$;
