-- The indexes of the tables a first backfill loads, except those the day stage reads by
-- (they stay), each with its constraint if it backs one. pg_get_indexdef qualifies names
-- the session's search_path does not show: with it pinned to pg_catalog for the rest of
-- the transaction, the recorded definition works from any session.
-- Params: tables, keep (index names).
SET LOCAL search_path = pg_catalog;

SELECT ic.relname AS index_name, tc.relname AS table_name,
       pg_get_indexdef(i.indexrelid) AS create_index, c.conname AS constraint_name,
       CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE' END AS constraint_kind
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class tc ON tc.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = tc.relnamespace
  LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype IN ('p', 'u')
 WHERE n.nspname = 'analytics' AND tc.relkind = 'r' AND tc.relname = ANY(%(tables)s)
   AND ic.relname <> ALL(%(keep)s)
 ORDER BY tc.relname, ic.relname
