-- Columns whose comment says `encrypted: <context>`, with their table's one-column key.
SELECT n.nspname AS schema, c.relname AS table_name, a.attname AS column_name,
       substring(col_description(c.oid, a.attnum) FROM 'encrypted:\s*([A-Za-z0-9_.:-]+)')
         AS context,
       (SELECT array_agg(k.attname ORDER BY k.attnum)
        FROM pg_index i JOIN pg_attribute k ON k.attrelid = i.indrelid AND k.attnum = ANY(i.indkey)
        WHERE i.indrelid = c.oid AND i.indisprimary) AS key_columns
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND col_description(c.oid, a.attnum) ~ 'encrypted:\s*[A-Za-z0-9_.:-]+'
ORDER BY 1, 2, 3
