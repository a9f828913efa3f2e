-- The database's UTC day and clock (a run's days and snapshot follow the server's time).
SELECT (now() AT TIME ZONE 'UTC')::date AS today, clock_timestamp() AS now
