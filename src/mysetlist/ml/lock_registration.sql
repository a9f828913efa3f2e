-- One registration of a model at a time, until the transaction ends: versions are numbered
-- and compared in order. %(key)s is core.db.lock_key of the model's lock name.
SELECT pg_advisory_xact_lock(%(key)s)
