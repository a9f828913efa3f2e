-- depends: 0007_setlist_predictions_per_input_state
-- Session-level churn features: how a fan's recent sessions compare with their own usual
-- rate (a ramp-down shows as a ratio, whatever the fan's absolute level), how long they
-- have been silent in hours, and how unlikely that silence is at their own rate. Rows
-- built before these columns existed cannot be filled in place: they are dropped and the
-- feature build's watermark is cleared, so the next build backfills them from the warehouse
-- (a build reads only warehouse days <= as_of: the same rows a nightly build would make).
SET LOCAL search_path = analytics, public;

DELETE FROM ml_user_features;
DELETE FROM watermarks WHERE name = 'ml.build_features';

ALTER TABLE ml_user_features
  -- sessions in the windows ending at as_of: "_3" = as_of-2 .. as_of, "_56" = the 8 weeks
  ADD COLUMN sessions_3 integer NOT NULL,
  ADD COLUMN sessions_7 integer NOT NULL,
  ADD COLUMN sessions_56 integer NOT NULL,
  -- sessions per day over the last 56 days (or since signup, when shorter)
  ADD COLUMN session_rate double precision NOT NULL,
  -- (sessions_k + 0.5) / (session_rate * k + 0.5): below 1, fewer sessions than usual
  ADD COLUMN session_ratio_3 double precision NOT NULL,
  ADD COLUMN session_ratio_7 double precision NOT NULL,
  ADD COLUMN session_ratio_14 double precision NOT NULL,
  -- least-squares slope of daily sessions over the last 14 days, per day, over
  -- session_rate, sign flipped: positive when sessions are falling off
  ADD COLUMN session_decline_14 double precision NOT NULL,
  -- hours from the last event to the end of as_of (UTC)
  ADD COLUMN hours_since_last_event double precision NOT NULL,
  -- log P(no session for that long) for a fan with this history: Poisson sessions at a
  -- Gamma(0.5 + sessions_56, 2 + days observed) rate (a weak prior of 0.25 a day);
  -- very negative = a silence this fan rarely keeps
  ADD COLUMN silence_log_probability double precision NOT NULL;
