-- Done: the counts stay, the subject's id goes (and the requester's, when it was the user).
UPDATE privacy.erasure_requests
SET status = 'done', finished_at = now(), user_id = NULL,
    requested_by = CASE WHEN requested_by = user_id THEN NULL ELSE requested_by END,
    counts = %(counts)s::jsonb, redis_keys = %(redis_keys)s, models = %(models)s::jsonb
WHERE id = %(id)s
