-- The time-zone names PostgreSQL knows (its own tz database, which can differ from
-- Python's: "localtime" is a file to Python and unknown here).
SELECT name FROM pg_timezone_names
