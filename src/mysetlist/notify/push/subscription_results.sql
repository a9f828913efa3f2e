-- After a round of sends: successes reset the failure count, retryable failures add one,
-- and subscriptions the push service says are gone (404/410) are deleted.
WITH gone AS (
  DELETE FROM app.push_subscriptions
  WHERE id = ANY (%(gone_ids)s::bigint[])
)
UPDATE app.push_subscriptions s SET
  last_success_at = CASE WHEN r.ok THEN now() ELSE s.last_success_at END,
  failure_count = CASE WHEN r.ok THEN 0 ELSE s.failure_count + 1 END
FROM unnest(%(ids)s::bigint[], %(ok)s::boolean[]) AS r(id, ok)
WHERE s.id = r.id
