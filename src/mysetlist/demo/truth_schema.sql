-- The demo's own schema, created by the demo when it builds a world (never by the migration
-- chain: a production database has no use for it). Idempotent; the caller serialises
-- concurrent builds with an advisory lock and runs this inside the build's transaction.

-- Ground truth of the synthetic world (`mysetlist demo`): the latent tastes, activity levels
-- and churn dates the generator planted, so later tests can check that models recover them.
-- Operators' and users' roles get nothing here: it is a test oracle, not product data.

CREATE SCHEMA IF NOT EXISTS demo_truth;
REVOKE ALL ON SCHEMA demo_truth FROM PUBLIC;

-- One row: the world currently loaded (spec, seed, the instant it was built "as of").
CREATE TABLE IF NOT EXISTS demo_truth.world (
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
CREATE TABLE IF NOT EXISTS demo_truth.catalog_ids (
  table_name  text PRIMARY KEY,
  first_id    bigint NOT NULL,
  last_id     bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS demo_truth.user_profile (
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
CREATE TABLE IF NOT EXISTS demo_truth.user_taste (
  user_id  uuid NOT NULL,
  genre    text NOT NULL,
  weight   real NOT NULL,
  PRIMARY KEY (user_id, genre)
);

-- Rows about demo users: declared like every table about a user (privacy/discovery.py), so
-- export and erasure find them.
COMMENT ON COLUMN demo_truth.user_profile.user_id IS 'personal: user_id';
COMMENT ON COLUMN demo_truth.user_taste.user_id IS 'personal: user_id';

-- The secret the demo derives its visitors' anonymous and session ids from (random like
-- production ids, so nobody can guess another fan's; the same for the same world, so a
-- reload of a window reproduces its events). Generated per build, never shown.
ALTER TABLE demo_truth.world ADD COLUMN IF NOT EXISTS id_secret bytea;

CREATE TABLE IF NOT EXISTS demo_truth.artist_profile (
  artist_id      bigint PRIMARY KEY,
  primary_genre  text NOT NULL,
  popularity     real NOT NULL                  -- relative draw weight, sums to 1
);

-- How likely each song is to be played at a show of its artist (the "hits").
CREATE TABLE IF NOT EXISTS demo_truth.song_weight (
  song_id     bigint PRIMARY KEY,
  artist_id   bigint NOT NULL,
  play_weight real NOT NULL
);

-- Bulk loading of a big demo event history: fill bare day tables (no indexes), then attach
-- them to analytics.user_events, which builds each partition's indexes in one sorted pass
-- instead of row by row (about twice as fast). Both functions run inside the caller's
-- transaction; the day tables are named and bounded exactly like
-- analytics.ensure_event_partitions makes them.

-- Make demo_truth.event_load, partitioned by day over [from_day, to_day], whose partitions
-- are the future analytics.user_events_YYYYMMDD. An existing day partition of
-- analytics.user_events in the range must be empty: it is dropped and made anew.
CREATE OR REPLACE FUNCTION demo_truth.begin_event_bulk_load(from_day date, to_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  d date;
  part text;
  has_rows boolean;
BEGIN
  DROP TABLE IF EXISTS demo_truth.event_load;
  CREATE TABLE demo_truth.event_load (LIKE analytics.user_events INCLUDING DEFAULTS)
    PARTITION BY RANGE (created_at);
  d := from_day;
  WHILE d <= to_day LOOP
    part := 'user_events_' || to_char(d, 'YYYYMMDD');
    IF to_regclass('analytics.' || part) IS NOT NULL THEN
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM analytics.%I)', part) INTO has_rows;
      IF has_rows THEN
        RAISE EXCEPTION 'analytics.% is not empty; cannot bulk-load into it', part;
      END IF;
      EXECUTE format('DROP TABLE analytics.%I', part);
    END IF;
    EXECUTE format(
      'CREATE TABLE analytics.%I PARTITION OF demo_truth.event_load FOR VALUES FROM (%L) TO (%L)',
      part, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
    d := d + 1;
  END LOOP;
  RETURN to_day - from_day + 1;
END
$$;

-- Move every filled day table from demo_truth.event_load to analytics.user_events (the
-- parent's indexes are built on attach), then drop the loading parent.
CREATE OR REPLACE FUNCTION demo_truth.finish_event_bulk_load()
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  part regclass;
  bound text;
  attached integer := 0;
BEGIN
  FOR part, bound IN
    SELECT c.oid::regclass, pg_get_expr(c.relpartbound, c.oid)
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'demo_truth.event_load'::regclass
    ORDER BY 1
  LOOP
    EXECUTE format('ALTER TABLE demo_truth.event_load DETACH PARTITION %s', part);
    EXECUTE format('ALTER TABLE analytics.user_events ATTACH PARTITION %s %s', part, bound);
    attached := attached + 1;
  END LOOP;
  DROP TABLE demo_truth.event_load;
  RETURN attached;
END
$$;
