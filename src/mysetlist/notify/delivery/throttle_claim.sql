-- The first notification of a (user, type, key) window claims it; later ones are folded.
INSERT INTO notify.throttle_windows (user_id, type, throttle_key, window_start, notification_id)
SELECT r.user_id, %(type)s, %(key)s, %(window_start)s, r.notification_id
FROM unnest(%(user_ids)s::uuid[], %(notification_ids)s::bigint[]) AS r(user_id, notification_id)
ON CONFLICT (user_id, type, throttle_key, window_start)
  DO UPDATE SET folded = notify.throttle_windows.folded + 1
RETURNING user_id, (xmax = 0) AS claimed  -- xmax 0: inserted, not updated
