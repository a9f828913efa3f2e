-- Ground truth of the synthetic world (`mysetlist demo`): the latent tastes, activity levels
-- and churn dates the generator planted, so later tests can check that models recover them.
-- Operators' and users' roles get nothing here: it is a test oracle, not product data.

CREATE SCHEMA IF NOT EXISTS demo_truth;
REVOKE ALL ON SCHEMA demo_truth FROM PUBLIC;

-- One row: the world currently loaded (spec, seed, the instant it was built "as of").
CREATE TABLE demo_truth.world (
  id              smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  seed            bigint NOT NULL,
  spec            jsonb NOT NULL,
  history_start   timestamptz NOT NULL,
  as_of           timestamptz NOT NULL,   -- the world's "now"; shows after it are upcoming
  built_at        timestamptz NOT NULL DEFAULT now(),
  summary         jsonb NOT NULL DEFAULT '{}'
);

-- The id ranges the generator allocated in identity-keyed app tables, so that replacing the
-- world deletes exactly what it created and nothing else.
CREATE TABLE demo_truth.catalog_ids (
  table_name  text PRIMARY KEY,
  first_id    bigint NOT NULL,
  last_id     bigint NOT NULL
);

CREATE TABLE demo_truth.user_profile (
  user_id          uuid PRIMARY KEY,
  user_no          integer NOT NULL UNIQUE,     -- 1-based; the email is user<no>@example.test
  signup_at        timestamptz NOT NULL,
  activity_level   real NOT NULL,               -- expected sessions per day while active
  predictor_skill  real NOT NULL,               -- 0 = votes at random, 1 = knows the setlists
  churns           boolean NOT NULL,
  decay_starts_at  timestamptz,                 -- activity ramps down from here ...
  churn_at         timestamptz,                 -- ... to zero here; no events after it
  CHECK (churns = (churn_at IS NOT NULL))
);

-- Latent genre tastes: a Dirichlet draw per user; weights sum to 1 over the genres.
CREATE TABLE demo_truth.user_taste (
  user_id  uuid NOT NULL,
  genre    text NOT NULL,
  weight   real NOT NULL,
  PRIMARY KEY (user_id, genre)
);

CREATE TABLE demo_truth.artist_profile (
  artist_id      bigint PRIMARY KEY,
  primary_genre  text NOT NULL,
  popularity     real NOT NULL                  -- relative draw weight, sums to 1
);

-- How likely each song is to be played at a show of its artist (the "hits").
CREATE TABLE demo_truth.song_weight (
  song_id     bigint PRIMARY KEY,
  artist_id   bigint NOT NULL,
  play_weight real NOT NULL
);
