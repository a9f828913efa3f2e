-- Run as the caller: RLS keeps it to their own subscriptions.
DELETE FROM app.push_subscriptions
WHERE endpoint_hash = %(endpoint_hash)s AND user_id = %(user_id)s
RETURNING id
