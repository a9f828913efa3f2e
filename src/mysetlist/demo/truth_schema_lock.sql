-- Concurrent builds wait for each other before creating demo_truth (key: core.db.lock_key).
SELECT pg_advisory_xact_lock(%s)
