-- Events, active users and votes per hour over the last 24 hours (the hourly rollup).
SELECT coalesce(json_agg(json_build_object(
         'hour', hour, 'events', events, 'users', users, 'votes', votes) ORDER BY hour), '[]')
       AS data
FROM (
  SELECT hour,
         sum(event_count) FILTER (WHERE event_type = '*') AS events,
         sum(unique_users) FILTER (WHERE event_type = '*') AS users,
         coalesce(sum(event_count) FILTER (WHERE event_type = 'vote'), 0) AS votes
  FROM analytics.hourly_real_time_metrics
  WHERE hour >= now() - interval '24 hours' AND event_type IN ('*', 'vote')
  GROUP BY hour
) AS h
