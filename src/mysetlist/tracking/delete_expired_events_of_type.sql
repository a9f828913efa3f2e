-- Per-type retention (MYSETLIST_EVENT_RETENTION_OVERRIDES), shorter than the general one.
DELETE FROM analytics.user_events
 WHERE event_type = %(event_type)s AND created_at < now() - make_interval(days => %(days)s)
