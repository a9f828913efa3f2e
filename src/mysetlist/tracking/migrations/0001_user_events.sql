-- Every interaction, partitioned by day on created_at (the event's own time, UTC).
-- The column set below is a contract other capabilities rely on; add, do not rename.

CREATE TABLE analytics.user_events (
  event_id      uuid NOT NULL DEFAULT gen_random_uuid(),
  message_id    text,                      -- client idempotency key (Segment messageId, PostHog uuid)
  user_id       uuid,                      -- from the JWT or identify(), never from the body
  anonymous_id  text,
  session_id    text,
  event_type    text NOT NULL,
  page_url      text,
  properties    jsonb NOT NULL DEFAULT '{}',
  source        text NOT NULL DEFAULT 'api',
  created_at    timestamptz NOT NULL,
  received_at   timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (created_at);

-- Events outside every daily partition still land (never rejected); upkeep moves them.
CREATE TABLE analytics.user_events_default PARTITION OF analytics.user_events DEFAULT;

CREATE INDEX idx_user_events_user_created ON analytics.user_events (user_id, created_at DESC);
CREATE INDEX idx_user_events_type_created ON analytics.user_events (event_type, created_at);
CREATE INDEX idx_user_events_session ON analytics.user_events (session_id);
CREATE INDEX idx_user_events_created_brin ON analytics.user_events USING brin (created_at);

GRANT SELECT ON analytics.user_events TO authenticated;
GRANT ALL ON analytics.user_events TO service_role;
ALTER TABLE analytics.user_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.user_events FORCE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own events" ON analytics.user_events FOR SELECT
  USING (auth.uid() = user_id OR auth.is_admin());
DO $$
BEGIN
  EXECUTE format(
    'CREATE POLICY "Owner role full access" ON analytics.user_events FOR ALL TO %I USING (true) WITH CHECK (true)',
    current_user);
END
$$;

-- Create the daily partitions for [from_day, to_day]; idempotent. Rows already sitting in
-- the default partition for such a day are moved into the new partition.
CREATE OR REPLACE FUNCTION analytics.ensure_event_partitions(from_day date, to_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  d date;
  lo timestamptz;
  hi timestamptz;
  part text;
  created integer := 0;
BEGIN
  d := from_day;
  WHILE d <= to_day LOOP
    part := 'user_events_' || to_char(d, 'YYYYMMDD');
    lo := d::timestamp AT TIME ZONE 'UTC';
    hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
    IF to_regclass('analytics.' || part) IS NULL THEN
      CREATE TEMP TABLE IF NOT EXISTS _moved_events (LIKE analytics.user_events) ON COMMIT DROP;
      WITH moved AS (
        DELETE FROM analytics.user_events_default
        WHERE created_at >= lo AND created_at < hi RETURNING *)
      INSERT INTO _moved_events SELECT * FROM moved;
      EXECUTE format(
        'CREATE TABLE analytics.%I PARTITION OF analytics.user_events FOR VALUES FROM (%L) TO (%L)',
        part, lo, hi);
      INSERT INTO analytics.user_events SELECT * FROM _moved_events;
      TRUNCATE _moved_events;
      created := created + 1;
    END IF;
    d := d + 1;
  END LOOP;
  RETURN created;
END
$$;

-- PERFORM, not SELECT: yoyo prints the result of a SELECT in a migration.
DO $$ BEGIN
  PERFORM analytics.ensure_event_partitions((now() AT TIME ZONE 'UTC')::date - 7,
                                            (now() AT TIME ZONE 'UTC')::date + 7);
END $$;
