-- Release a session advisory lock (key: core.db.lock_key).
SELECT pg_advisory_unlock(%s)
