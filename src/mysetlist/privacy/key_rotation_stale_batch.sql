-- The next batch of stale values of one encrypted column, in key order after the last key
-- seen (NULL: from the start). Template fields: the table, its key and the column.
SELECT {key} AS key, {value} AS value FROM {table}
WHERE {value} IS NOT NULL AND substring({value} FROM 1 FOR 5) <> %(header)s
  AND (%(after)s::text IS NULL OR {key} > %(after_value)s)
ORDER BY {key}
LIMIT %(limit)s
