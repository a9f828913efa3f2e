-- depends: 0004_fan_prediction_scores
-- The indexes a first backfill dropped to load without them (warehouse/backfill.py), with
-- what builds each again: its pg_get_indexdef and, for the index of a primary key or
-- unique constraint, that constraint. Every run builds whatever is listed here before it
-- loads a day, so a run killed mid-backfill leaves no table without its index past the
-- next run.
CREATE TABLE analytics.etl_deferred_indexes (
  index_name       text PRIMARY KEY,
  table_name       text NOT NULL,
  create_index     text NOT NULL,
  constraint_name  text,
  constraint_kind  text CHECK (constraint_kind IN ('PRIMARY KEY', 'UNIQUE')),
  run_id           bigint,
  dropped_at       timestamptz NOT NULL DEFAULT now()
);
