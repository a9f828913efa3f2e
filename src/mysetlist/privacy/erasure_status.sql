SELECT id, status, source, requested_by_role, requested_at, finished_at, attempts, counts,
       redis_keys, models
FROM privacy.erasure_requests WHERE id = %(id)s
