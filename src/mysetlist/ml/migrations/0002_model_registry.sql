-- The model registry: every trained version of every model, with the data it saw, its
-- parameters, offline metrics and artifact. At most one version of a model is active;
-- a new version becomes active only if its primary offline metric is no worse (the
-- decision and its reason are kept on the row).
CREATE TABLE analytics.ml_models (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name            text NOT NULL,
  version         integer NOT NULL,
  trained_at      timestamptz NOT NULL DEFAULT now(),
  data_from       date,
  data_to         date,
  params          jsonb NOT NULL DEFAULT '{}',
  metrics         jsonb NOT NULL DEFAULT '{}',
  primary_metric  text NOT NULL,
  higher_is_better boolean NOT NULL DEFAULT true,
  artifact        bytea,
  artifact_format text,
  active          boolean NOT NULL DEFAULT false,
  activated_at    timestamptz,
  decision        text NOT NULL,
  UNIQUE (name, version),
  CHECK (metrics ? primary_metric)
);
CREATE UNIQUE INDEX ml_models_one_active ON analytics.ml_models (name) WHERE active;
-- Operators read the registry through the API; user roles have no business here.
REVOKE ALL ON analytics.ml_models FROM PUBLIC;
