-- Take a session advisory lock if free (key: core.db.lock_key); whether it was taken.
SELECT pg_try_advisory_lock(%s) AS taken
