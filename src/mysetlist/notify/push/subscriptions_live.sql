-- The subscriptions a push delivery goes to. Those without a success for the idle period
-- (a browser that dropped them without telling: Safari answers 200 for expired ones) are
-- deleted first.
WITH expired AS (
  DELETE FROM app.push_subscriptions
  WHERE user_id = ANY (%(user_ids)s::uuid[])
    AND coalesce(last_success_at, created_at) < now() - make_interval(days => %(idle_days)s)
)
SELECT id, user_id, subscription_encrypted
FROM app.push_subscriptions
WHERE user_id = ANY (%(user_ids)s::uuid[])
  AND coalesce(last_success_at, created_at) >= now() - make_interval(days => %(idle_days)s)
  AND failure_count < 5
ORDER BY id
