-- ETL run tracking: runs, their per-step timings and quality checks, an audit trail of
-- manual triggers and cancels, the incremental watermark and the per-day load log.

SET LOCAL search_path = analytics, public;

CREATE TABLE etl_runs (
  id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  trigger              text NOT NULL CHECK (trigger IN ('schedule', 'incremental', 'api', 'cli')),
  mode                 text NOT NULL CHECK (mode IN ('daily', 'range', 'incremental')),
  from_day             date,
  to_day               date,
  steps                text[] NOT NULL,
  status               text NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  requested_by         uuid,            -- the operator (API) who started it; NULL for cron/cli
  requested_by_role    text,
  job_id               bigint,          -- the procrastinate job executing it, if any
  attempt              integer NOT NULL DEFAULT 0,
  created_at           timestamptz NOT NULL DEFAULT now(),
  started_at           timestamptz,
  finished_at          timestamptz,
  duration_ms          double precision,
  current_step         text,
  days_total           integer NOT NULL DEFAULT 0,
  days_done            integer NOT NULL DEFAULT 0,
  rows_written         bigint NOT NULL DEFAULT 0,
  step_timings         jsonb NOT NULL DEFAULT '{}',  -- {step: {"ms": .., "rows": ..}}
  backend_pids         integer[] NOT NULL DEFAULT '{}',  -- database sessions doing the work
  snapshot_received_at timestamptz,     -- events received after this are left to the next run
  cancel_requested_at  timestamptz,
  cancelled_by         uuid,
  checks_status        text NOT NULL DEFAULT 'not_run'
                       CHECK (checks_status IN ('not_run', 'passed', 'failed')),
  checks_failed        integer NOT NULL DEFAULT 0,
  maintenance          jsonb,
  error                text
);
-- At most one run is queued or running at any time (the API answers 409 on conflict).
CREATE UNIQUE INDEX etl_runs_one_active ON etl_runs ((true)) WHERE status IN ('queued', 'running');
CREATE INDEX etl_runs_created_idx ON etl_runs (created_at DESC);

CREATE TABLE etl_audit (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id      bigint REFERENCES etl_runs (id) ON DELETE SET NULL,
  action      text NOT NULL CHECK (action IN ('trigger', 'cancel')),
  actor_id    uuid,
  actor_role  text,
  at          timestamptz NOT NULL DEFAULT now(),
  details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX etl_audit_run_idx ON etl_audit (run_id);

CREATE TABLE etl_quality_checks (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id      bigint NOT NULL REFERENCES etl_runs (id) ON DELETE CASCADE,
  name        text NOT NULL,
  category    text NOT NULL CHECK (category IN ('schema', 'completeness', 'consistency', 'freshness')),
  passed      boolean NOT NULL,
  details     jsonb NOT NULL DEFAULT '{}',
  checked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX etl_quality_checks_run_idx ON etl_quality_checks (run_id);

-- The incremental watermark: the last day fully processed by a daily/range run, and the
-- last received_at processed by the incremental run over today's partial day.
CREATE TABLE etl_watermarks (
  pipeline          text PRIMARY KEY,
  last_full_day     date,
  last_received_at  timestamptz,
  run_id            bigint,
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Which days are loaded, by which run, and whether the day was still open (partial).
CREATE TABLE etl_loaded_days (
  day         date PRIMARY KEY,
  run_id      bigint NOT NULL,
  loaded_at   timestamptz NOT NULL,
  events      bigint NOT NULL,
  partial     boolean NOT NULL
);

GRANT SELECT ON etl_runs, etl_audit, etl_quality_checks, etl_watermarks, etl_loaded_days
  TO service_role;
