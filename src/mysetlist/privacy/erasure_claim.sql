-- The request to work on, counted as one more attempt (NULL when done or unknown).
UPDATE privacy.erasure_requests SET attempts = attempts + 1
WHERE id = %(id)s AND status = 'pending'
RETURNING id, user_id, requested_by
