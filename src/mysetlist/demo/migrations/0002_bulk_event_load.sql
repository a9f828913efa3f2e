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
