-- Claim an idempotency key (NULL: none given); nothing returned when it exists already.
INSERT INTO notify.send_requests (idempotency_key, caller, request_hash, type)
VALUES (%(key)s, %(caller)s, %(hash)s, %(type)s)
ON CONFLICT (caller, idempotency_key) DO NOTHING
RETURNING id
