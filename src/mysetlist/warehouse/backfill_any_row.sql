-- Whether a table has a row; {table} is filled with its name.
SELECT 1 FROM {table} LIMIT 1
