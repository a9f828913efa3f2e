-- A stale in-flight request (its process died before committing) is taken over: its clock
-- restarts under the new owner.
UPDATE notify.send_requests SET created_at = now() WHERE id = %(id)s
