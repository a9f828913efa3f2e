-- The shared plumbing of background work (core/run_log.py, core/watermarks.py,
-- core/migrate.py): one run log for every background activity of every capability, one
-- table of incremental-progress watermarks, and the version of the job queue's schema.

CREATE SCHEMA IF NOT EXISTS analytics;

-- One row per run of a background activity (task names `<capability>.<task>`); written
-- `running` and committed before the work starts, so a run in progress or one whose
-- process died is visible. Domain records (etl_runs, deliveries) keep their own detail.
CREATE TABLE analytics.job_runs (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task         text NOT NULL,
  trigger      text NOT NULL DEFAULT 'schedule',   -- schedule | api | cli | event | ...
  status       text NOT NULL DEFAULT 'running'
               CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
  started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at  timestamptz,
  duration_ms  double precision,
  rows         bigint,
  details      jsonb NOT NULL DEFAULT '{}',
  error        text,                               -- "ExceptionType: message"
  job_id       bigint                              -- the procrastinate job, when there is one
);
CREATE INDEX job_runs_task_started_idx ON analytics.job_runs (task, started_at DESC);
CREATE INDEX job_runs_running_idx ON analytics.job_runs (task) WHERE status = 'running';

-- How far an incremental activity got: a position in time (e.g. received_at processed up
-- to) and/or the last fully processed day. Fields only move forward (core/watermarks.py).
CREATE TABLE analytics.watermarks (
  name           text PRIMARY KEY,
  position       timestamptz,
  last_full_day  date,
  run_id         bigint,
  updated_at     timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT ON analytics.job_runs, analytics.watermarks TO service_role;

-- Which procrastinate schema the job queue tables are at (the last of procrastinate's
-- shipped SQL migrations included when it was installed); core/migrate.py refuses to
-- start on a schema older than the installed procrastinate expects.
CREATE TABLE public.job_queue_schema (
  singleton              boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  procrastinate_version  text NOT NULL,
  last_migration         text NOT NULL,
  recorded_at            timestamptz NOT NULL DEFAULT now()
);
