-- A revocation outlives every token of its id by one time-to-live (a revoked id is never
-- renewed, so its last token expired by then); after that it is only clutter.
DELETE FROM analytics.revoked_signed_ids
 WHERE revoked_at < now() - make_interval(secs => %(ttl_seconds)s)
