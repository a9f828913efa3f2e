-- The users a send reaches (a list, the followers of an artist, the voters of a show) with
-- what channel choice needs: preferences, a verified unsuppressed email, a live push
-- subscription, recent presence.
WITH targets AS (
  SELECT unnest(%(user_ids)s::uuid[]) AS user_id
  UNION
  SELECT f.user_id FROM app.follows f
  WHERE %(artist_id)s::bigint IS NOT NULL AND f.artist_id = %(artist_id)s::bigint
  UNION
  SELECT v.user_id FROM app.setlist_votes v
  WHERE %(show_id)s::bigint IS NOT NULL AND v.show_id = %(show_id)s::bigint
)
SELECT u.id AS user_id, u.timezone AS profile_timezone, u.locale,
       encode(u.email_hash, 'hex') AS email_key,
       (u.email_encrypted IS NOT NULL AND u.email_verified_at IS NOT NULL) AS email_verified,
       (s.address_hash IS NOT NULL) AS suppressed, s.reason AS suppression_reason,
       EXISTS (SELECT 1 FROM app.push_subscriptions ps
               WHERE ps.user_id = u.id AND ps.failure_count < 5) AS has_push,
       coalesce(u.last_active_at > now() - interval '30 days', false) AS recently_active,
       p.channels, p.digest, p.quiet_hours_start, p.quiet_hours_end, p.timezone, p.muted,
       (p.user_id IS NOT NULL) AS has_preferences
FROM targets t
JOIN app.users u ON u.id = t.user_id AND u.deleted_at IS NULL
LEFT JOIN notify.suppressions s ON s.address_hash = u.email_hash
LEFT JOIN notify.user_notification_preferences p ON p.user_id = u.id
