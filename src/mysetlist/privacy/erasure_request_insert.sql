-- One pending request per user: asking again while one is pending returns that one.
WITH inserted AS (
  INSERT INTO privacy.erasure_requests
    (user_id, requested_by, requested_by_role, source, request_id)
  VALUES (%(user_id)s, %(requested_by)s, %(requested_by_role)s, %(source)s, %(request_id)s)
  ON CONFLICT (user_id) WHERE status = 'pending' DO NOTHING
  RETURNING id, true AS created
)
SELECT id, created FROM inserted
UNION ALL
SELECT id, false FROM privacy.erasure_requests
WHERE user_id = %(user_id)s AND status = 'pending' AND NOT EXISTS (SELECT 1 FROM inserted)
