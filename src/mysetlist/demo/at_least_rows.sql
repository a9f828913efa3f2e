-- Whether the table holds the given number of rows or more, counting no further.
SELECT count(*) >= %s AS at_least FROM (SELECT 1 FROM {table} LIMIT %s) t
