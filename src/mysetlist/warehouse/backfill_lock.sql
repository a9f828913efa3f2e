-- A first backfill's tables, held from the emptiness check to the index drops; {tables}
-- is filled with their names. NOWAIT: a table another session holds means no backfill
-- (the run loads as usual) rather than a wait.
LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE NOWAIT
