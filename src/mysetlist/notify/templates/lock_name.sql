-- One save of a template name at a time, so its versions number without gaps or clashes
-- (the key is core.db.lock_key of "notify.template:<name>").
SELECT pg_advisory_xact_lock(%(key)s)
