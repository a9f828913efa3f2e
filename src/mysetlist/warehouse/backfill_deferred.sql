-- The indexes a first backfill dropped and no run has built again yet, and whether each
-- (and its constraint) exists now: a run killed while building may have built some.
SELECT d.index_name, d.table_name, d.create_index, d.constraint_name, d.constraint_kind,
       to_regclass('analytics.' || quote_ident(d.index_name)) IS NOT NULL AS index_exists,
       EXISTS (SELECT 1 FROM pg_constraint c
                WHERE c.conname = d.constraint_name
                  AND c.conrelid = to_regclass('analytics.' || quote_ident(d.table_name)))
         AS constraint_exists
  FROM analytics.etl_deferred_indexes d
 ORDER BY d.table_name, d.index_name
