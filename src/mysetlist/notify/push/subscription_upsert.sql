-- The caller's subscription (a browser re-subscribing replaces its keys; an endpoint that
-- another account registered on the same browser moves to the caller). Owner role, with
-- user_id from the verified token: the only user_id this statement ever writes.
INSERT INTO app.push_subscriptions AS s
  (user_id, endpoint_hash, subscription_encrypted, user_agent)
VALUES (%(user_id)s, %(endpoint_hash)s, %(subscription)s, %(user_agent)s)
ON CONFLICT (endpoint_hash) DO UPDATE SET
  user_id = excluded.user_id,
  subscription_encrypted = excluded.subscription_encrypted,
  user_agent = excluded.user_agent,
  failure_count = 0,
  created_at = CASE WHEN s.user_id = excluded.user_id THEN s.created_at ELSE now() END
RETURNING id, (xmax = 0) AS created
