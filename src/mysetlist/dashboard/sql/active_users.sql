-- DAU / WAU / MAU and stickiness (DAU / MAU) per UTC day over the range: the warehouse's
-- daily platform totals (one row per day), never the raw events.
SELECT coalesce(json_agg(json_build_object(
         'day', day, 'dau', active_users, 'wau', wau, 'mau', mau,
         'stickiness', stickiness, 'new_users', new_users, 'events', events_total,
         'votes', votes) ORDER BY day), '[]') AS data
FROM analytics.daily_platform_metrics
WHERE day >= %(since_day)s AND day <= %(until_day)s
