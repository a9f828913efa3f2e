-- Single use: the first redeem marks the link used; a used or expired link matches nothing.
UPDATE analytics.dashboard_login_links SET used_at = now()
WHERE token_hash = %(token_hash)s AND used_at IS NULL AND expires_at > now()
RETURNING operator_id
