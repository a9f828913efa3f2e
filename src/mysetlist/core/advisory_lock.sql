-- Wait for a session advisory lock; its key comes from core.db.lock_key.
SELECT pg_advisory_lock(%s)
