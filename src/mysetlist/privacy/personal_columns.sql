-- Every column that declares personal data: a single-column reference to app.users(id), or a
-- comment `personal: <kind>[; erase: <action>]` (the comment wins where both exist).
-- Partitions are reached through their parent.
SELECT n.nspname AS schema, c.relname AS table_name, a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS data_type, a.attnotnull AS not_null,
       col_description(c.oid, a.attnum) AS comment,
       EXISTS (
         SELECT 1 FROM pg_constraint k
         WHERE k.contype = 'f' AND k.conrelid = c.oid AND k.conkey = ARRAY[a.attnum]
           AND k.confrelid = 'app.users'::regclass
       ) AS references_users
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_%'
ORDER BY n.nspname, c.relname, a.attnum
