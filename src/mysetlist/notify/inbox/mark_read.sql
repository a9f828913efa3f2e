-- Idempotent: the first read time stays. No row back = not the caller's (RLS) or unknown.
UPDATE notify.notifications SET read_at = coalesce(read_at, now())
WHERE id = %(id)s AND user_id = %(user_id)s
RETURNING id, read_at
