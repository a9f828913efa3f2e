-- The group commit's per-connection staging table for a COPY flush. Named ..._v2: a
-- connection made by an older version keeps its own temp table.
CREATE TEMP TABLE IF NOT EXISTS ingest_staging_v2 (
  message_id text NOT NULL, user_id uuid, anonymous_id text, session_id text,
  event_type text NOT NULL, page_url text, properties text NOT NULL, source text NOT NULL,
  created_at timestamptz NOT NULL, claimed_user_id uuid, sender bytea NOT NULL,
  proves_anonymous boolean NOT NULL, proves_session boolean NOT NULL
) ON COMMIT DELETE ROWS
