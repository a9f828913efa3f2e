-- A user keeps at most %(cap)s push subscriptions (issue 15: one user registered 200, each
-- a URL our workers POST to); the oldest go.
DELETE FROM app.push_subscriptions
WHERE user_id = %(user_id)s
  AND id NOT IN (SELECT id FROM app.push_subscriptions
                 WHERE user_id = %(user_id)s
                 ORDER BY created_at DESC, id DESC
                 LIMIT %(cap)s)
