-- A table the build replaces rows of; writers wait until the build commits.
LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE
