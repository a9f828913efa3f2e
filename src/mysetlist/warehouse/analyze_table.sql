-- Fresh planner statistics for a table the run wrote; {table} is filled with its name.
ANALYZE {table}
