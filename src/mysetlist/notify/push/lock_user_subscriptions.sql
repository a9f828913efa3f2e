-- One subscribe at a time per user, so that the cap holds under concurrent ones (the key
-- is core.db.lock_key of "notify.push_subscriptions:<user id>").
SELECT pg_advisory_xact_lock(%(key)s)
