SELECT id FROM privacy.erasure_requests
WHERE status = 'pending' AND requested_at < now() - %(older_than)s::interval
ORDER BY id
