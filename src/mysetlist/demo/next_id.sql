-- The first id above the table's highest.
SELECT coalesce(max(id), 0) + 1 AS next_id FROM {table}
