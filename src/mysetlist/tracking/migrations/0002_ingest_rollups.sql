-- Ingest support (dedup, identities, write keys), rollups and job runs.

-- Dedup by client message id. A unique index on the partitioned user_events would have to
-- include created_at, and a retried event without a client timestamp gets a new
-- created_at, so dedup lives in its own table keyed by message_id alone. The group-commit
-- writer inserts here with ON CONFLICT DO NOTHING RETURNING and only the returned ids go
-- on to user_events, in the same transaction. Rows older than the dedup window are purged.
CREATE TABLE analytics.event_dedup (
  message_id   text PRIMARY KEY,
  received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_event_dedup_received_brin ON analytics.event_dedup USING brin (received_at);

-- Identity links: an anonymous id or a session id that authenticated (JWT, Segment identify,
-- PostHog $identify) belongs to that user. Linking rewrites the user's earlier anonymous
-- events once; later anonymous events with a linked id get the user at insert.
CREATE TABLE analytics.identity_links (
  kind       text NOT NULL CHECK (kind IN ('anonymous', 'session')),
  id         text NOT NULL,
  user_id    uuid NOT NULL,
  linked_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, id)
);
CREATE INDEX idx_identity_links_user ON analytics.identity_links (user_id);

CREATE INDEX idx_user_events_anonymous ON analytics.user_events (anonymous_id)
  WHERE user_id IS NULL;
CREATE INDEX idx_user_events_received_brin ON analytics.user_events USING brin (received_at);

-- Write keys created with `mysetlist keys create` (only a SHA-256 of the key is kept).
CREATE TABLE analytics.write_keys (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text NOT NULL,
  key_prefix  text NOT NULL,
  key_sha256  bytea NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

-- Every background run of this capability leaves a row.
CREATE TABLE analytics.tracking_job_runs (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name         text NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at  timestamptz,
  status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
  rows         bigint,
  details      jsonb NOT NULL DEFAULT '{}',
  error        text
);
CREATE INDEX idx_tracking_job_runs_name_started ON analytics.tracking_job_runs (name, started_at DESC);

-- Incremental jobs remember how far they got.
CREATE TABLE analytics.tracking_watermarks (
  name        text PRIMARY KEY,
  watermark   timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Per hour (event time) and event type; event_type '*' is the hour's total.
-- Kept current by the rollup job, rows older than the retention are deleted (auto-cleanup).
CREATE TABLE analytics.hourly_real_time_metrics (
  hour              timestamptz NOT NULL,
  event_type        text NOT NULL,
  event_count       bigint NOT NULL,
  unique_users      bigint NOT NULL,
  unique_sessions   bigint NOT NULL,
  unique_anonymous  bigint NOT NULL,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (hour, event_type)
);
GRANT SELECT ON analytics.hourly_real_time_metrics TO authenticated, service_role;

-- Platform-wide figures, public (spec: "Public platform metrics" USING (true)).
CREATE TABLE public.platform_metrics (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  metric_name   text NOT NULL,
  metric_value  double precision NOT NULL,
  dimensions    jsonb NOT NULL DEFAULT '{}',
  recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_platform_metrics_name_recorded ON public.platform_metrics (metric_name, recorded_at DESC);
ALTER TABLE public.platform_metrics ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Public platform metrics" ON public.platform_metrics FOR SELECT USING (true);
GRANT SELECT ON public.platform_metrics TO anon, authenticated, service_role;
