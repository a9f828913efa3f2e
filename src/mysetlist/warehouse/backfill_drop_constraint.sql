-- A first backfill drops a constraint's index (with the constraint) it recorded.
ALTER TABLE {table} DROP CONSTRAINT {constraint}
