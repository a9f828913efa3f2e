-- Stop the database work of a running run now: cancel the statements of the backends it
-- recorded (its work connections).
SELECT pg_cancel_backend(pid) FROM unnest(%(pids)s::int[]) AS pid
