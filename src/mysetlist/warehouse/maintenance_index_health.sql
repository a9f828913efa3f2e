-- Bloat estimate per btree index of the warehouse tables: expected bytes = rows * (8-byte
-- index tuple header + 4-byte line pointer + MAXALIGN'd key width from pg_stats) / 0.9 fill
-- factor, plus one page of metadata; maintenance.py turns it into a ratio.
SELECT ic.relname AS index_name, tc.relname AS table_name,
       pg_relation_size(i.indexrelid) AS bytes, greatest(ic.reltuples, 0)::bigint AS est_rows,
       (8192 + greatest(ic.reltuples, 0) * (12 + ceil(coalesce(w.key_width, 8) / 8.0) * 8) / 0.9
       )::bigint AS expected_bytes
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class tc ON tc.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = tc.relnamespace
  JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
  LEFT JOIN LATERAL (
    SELECT sum(coalesce(s.avg_width, 8)) AS key_width
      FROM unnest(i.indkey) AS k(attnum)
      JOIN pg_attribute a ON a.attrelid = tc.oid AND a.attnum = k.attnum
      LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = tc.relname
                          AND s.attname = a.attname
  ) w ON true
 WHERE n.nspname = 'analytics' AND tc.relname = ANY(%(tables)s) AND tc.relkind IN ('r', 'm')
 ORDER BY 1
