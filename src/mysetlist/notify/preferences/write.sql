INSERT INTO notify.user_notification_preferences
  (user_id, channels, digest, quiet_hours_start, quiet_hours_end, timezone, muted, updated_at)
VALUES (auth.uid(), %(channels)s, %(digest)s, %(quiet_start)s, %(quiet_end)s, %(timezone)s,
        %(muted)s, now())
ON CONFLICT (user_id) DO UPDATE SET
  channels = EXCLUDED.channels, digest = EXCLUDED.digest,
  quiet_hours_start = EXCLUDED.quiet_hours_start, quiet_hours_end = EXCLUDED.quiet_hours_end,
  timezone = EXCLUDED.timezone, muted = EXCLUDED.muted, updated_at = now()
