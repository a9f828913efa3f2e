-- Tell every API process's stream that these users have something new; sent at commit,
-- so a stream never announces what a rolled-back chunk did not deliver.
SELECT pg_notify('notify_inbox', u::text) FROM unnest(%(user_ids)s::uuid[]) AS u
