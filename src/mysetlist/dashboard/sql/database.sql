-- Database size and its ten largest tables or partitions (indexes and TOAST included).
SELECT json_build_object(
  'database_bytes', pg_database_size(current_database()),
  'largest', (SELECT coalesce(json_agg(r ORDER BY r.bytes DESC), '[]') FROM (
                SELECT n.nspname || '.' || c.relname AS relation, c.relispartition AS partition,
                       pg_total_relation_size(c.oid) AS bytes, c.reltuples::bigint AS approx_rows
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'm')
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
                ORDER BY pg_total_relation_size(c.oid) DESC
                LIMIT 10) AS r)
) AS data
