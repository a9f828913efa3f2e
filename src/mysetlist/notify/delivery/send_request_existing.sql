SELECT id, request_hash, state, response, created_at < now() - %(stale)s::interval AS stale
FROM notify.send_requests
WHERE caller = %(caller)s AND idempotency_key = %(key)s
FOR UPDATE
