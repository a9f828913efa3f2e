-- Remember one index before a first backfill drops it (see backfill_candidates.sql).
INSERT INTO analytics.etl_deferred_indexes
  (index_name, table_name, create_index, constraint_name, constraint_kind, run_id)
VALUES (%(index_name)s, %(table_name)s, %(create_index)s, %(constraint_name)s,
        %(constraint_kind)s, %(run_id)s)
