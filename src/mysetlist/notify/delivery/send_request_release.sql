-- A request that failed before committing gives its Idempotency-Key back.
DELETE FROM notify.send_requests WHERE id = %(id)s AND state = 'in_flight'
