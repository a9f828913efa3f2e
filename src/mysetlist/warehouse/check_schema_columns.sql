-- The columns and types of the warehouse tables `tables`, as the catalogue has them.
SELECT c.relname AS table_name, a.attname AS column_name,
       format_type(a.atttypid, NULL) AS data_type
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'analytics' AND a.attnum > 0 AND NOT a.attisdropped
   AND c.relname = ANY(%(tables)s)
