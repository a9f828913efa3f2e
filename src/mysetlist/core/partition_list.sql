-- The partitions of {parent} (the default partition aside), by name.
SELECT c.relname AS name
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = %(parent)s::regclass
   AND NOT c.relpartbound IS NULL
   AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
 ORDER BY c.relname
