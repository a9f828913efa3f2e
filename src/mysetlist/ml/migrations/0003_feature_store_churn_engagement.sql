-- depends: 0002_model_registry
-- The ML feature store and the per-user outputs of the churn and engagement models.
--
-- Every feature row carries `as_of`, the day it describes: it is computed only from
-- warehouse days <= as_of (and events created before as_of + 1), so a model trained for a
-- past cut-off reads the features as they were that day and never sees the future. Rows
-- are rebuilt per day range (delete + insert), so a rebuild is idempotent.

SET LOCAL search_path = analytics, public;

-- One row per user and day for the users active in the 8 weeks up to as_of (the
-- population a churn or engagement forecast is about). Windows end at as_of inclusive:
-- "_7" = as_of-6 .. as_of, "_prev_7" = as_of-13 .. as_of-7, "_28" = as_of-27 .. as_of.
-- engagement_*: the mean daily engagement score over the window (inactive days count 0).
CREATE TABLE ml_user_features (
  as_of                  date NOT NULL,
  user_id                uuid NOT NULL,
  tenure_days            integer NOT NULL,   -- days since signup (app.users), else first day seen
  days_since_last_active integer NOT NULL,
  active_days_7          integer NOT NULL,
  active_days_prev_7     integer NOT NULL,
  active_days_28         integer NOT NULL,
  active_days_56         integer NOT NULL,
  events_7               integer NOT NULL,
  events_prev_7          integer NOT NULL,
  events_28              integer NOT NULL,
  sessions_28            integer NOT NULL,
  session_seconds_28     bigint NOT NULL,
  page_views_28          integer NOT NULL,
  votes_28               integer NOT NULL,
  follows_28             integer NOT NULL,
  searches_28            integer NOT NULL,
  engagement_7           double precision NOT NULL,
  engagement_prev_7      double precision NOT NULL,
  engagement_28          double precision NOT NULL,
  -- (events_7 - events_prev_7) / (events_7 + events_prev_7 + 1): -1 falling .. +1 rising
  activity_trend         double precision NOT NULL,
  -- engagement_prev_7 - engagement_7: positive when engagement fell this week
  engagement_decline     double precision NOT NULL,
  -- active days per day over the last 56 days (or since signup, when shorter)
  activity_rate          double precision NOT NULL,
  -- days_since_last_active * activity_rate: the active days this user would usually have
  -- had since their last one (a quiet week means more for a daily fan than a monthly one)
  missed_active_days     double precision NOT NULL,
  -- mean days between active days in the last 56 (56 when only one)
  mean_gap_days          double precision NOT NULL,
  -- the longest silence between two active days in the last 56 (56 when only one), and
  -- days_since_last_active over it: above 1, this silence is longer than any before
  longest_gap_days       integer NOT NULL,
  silence_ratio          double precision NOT NULL,
  PRIMARY KEY (user_id, as_of)
);
CREATE INDEX ml_user_features_as_of_idx ON ml_user_features (as_of);

-- One row per artist and day for artists with activity in the 28 days up to as_of.
-- net_followers: follow minus unfollow events up to as_of (events, not app.follows,
-- whose rows lose their history when a fan unfollows).
CREATE TABLE ml_artist_features (
  as_of            date NOT NULL,
  artist_id        bigint NOT NULL,
  net_followers    integer NOT NULL,
  activity_7       integer NOT NULL,
  activity_28      integer NOT NULL,
  views_28         integer NOT NULL,
  votes_28         integer NOT NULL,
  follows_28       integer NOT NULL,
  fan_days_28      integer NOT NULL,   -- sum over days of distinct fans that day
  trending_score   double precision,   -- the warehouse's score on the latest day <= as_of
  PRIMARY KEY (artist_id, as_of)
);
CREATE INDEX ml_artist_features_as_of_idx ON ml_artist_features (as_of);

-- One row per user, artist and day for the pairs with an interaction in the 28 days up to
-- as_of or a standing follow (by follow/unfollow events up to as_of): the raw signals of
-- the interaction matrix, for the recommenders to weight.
CREATE TABLE user_recommendation_features (
  as_of             date NOT NULL,
  user_id           uuid NOT NULL,
  artist_id         bigint NOT NULL,
  follows           boolean NOT NULL,
  artist_views_28   integer NOT NULL,
  show_views_28     integer NOT NULL,
  votes_28          integer NOT NULL,
  last_interaction  date,
  PRIMARY KEY (user_id, as_of, artist_id)
);
CREATE INDEX user_recommendation_features_as_of_idx ON user_recommendation_features (as_of);

-- Churn risk per user as of a day: the calibrated probability of no activity in the
-- `horizon_days` after as_of, its bucket, and the features that pushed it most (see
-- ml/churn/model.py for how contributions are measured).
CREATE TABLE ml_churn_predictions (
  as_of          date NOT NULL,
  user_id        uuid NOT NULL,
  horizon_days   integer NOT NULL,
  probability    double precision NOT NULL CHECK (probability BETWEEN 0 AND 1),
  risk_bucket    text NOT NULL CHECK (risk_bucket IN ('low', 'medium', 'high')),
  top_features   jsonb NOT NULL,
  model_version  integer NOT NULL,
  predicted_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, as_of)
);
CREATE INDEX ml_churn_predictions_as_of_idx ON ml_churn_predictions (as_of, probability DESC);

-- Engagement forecast per user as of a day: the mean daily engagement score expected
-- over as_of+1 .. as_of+7, beside the naive "same as last week" value.
CREATE TABLE ml_engagement_forecasts (
  as_of               date NOT NULL,
  user_id             uuid NOT NULL,
  forecast_7d         double precision NOT NULL,
  last_week           double precision NOT NULL,
  model_version       integer NOT NULL,
  predicted_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, as_of)
);
CREATE INDEX ml_engagement_forecasts_as_of_idx ON ml_engagement_forecasts (as_of);

-- Access: artist features are internal (no user role reads them); per-user tables only
-- through RLS, a fan sees their own rows, operators all.
REVOKE ALL ON ml_artist_features FROM PUBLIC;
GRANT SELECT ON ml_user_features, user_recommendation_features, ml_churn_predictions,
  ml_engagement_forecasts TO authenticated;
GRANT ALL ON ml_user_features, user_recommendation_features, ml_churn_predictions,
  ml_engagement_forecasts TO service_role;

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['ml_user_features', 'user_recommendation_features',
                           'ml_churn_predictions', 'ml_engagement_forecasts'] LOOP
    EXECUTE format('ALTER TABLE analytics.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE analytics.%I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format(
      'CREATE POLICY "Users can view own analytics" ON analytics.%I FOR SELECT USING (auth.uid() = user_id)', t);
    EXECUTE format(
      'CREATE POLICY "Operators can view all analytics" ON analytics.%I FOR SELECT USING (auth.is_admin())', t);
    EXECUTE format(
      'CREATE POLICY "Owner role full access" ON analytics.%I FOR ALL TO %I USING (true) WITH CHECK (true)',
      t, current_user);
  END LOOP;
END
$$;
