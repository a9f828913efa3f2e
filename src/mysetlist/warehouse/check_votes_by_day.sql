-- Votes cast in lo..hi: the platform's, and the warehouse's per user-day and per day.
SELECT
  (SELECT count(*) FROM app.setlist_votes
    WHERE created_at >= %(lo)s::date::timestamp AT TIME ZONE 'UTC'
      AND created_at < (%(hi)s::date + 1)::timestamp AT TIME ZONE 'UTC') AS app_votes,
  (SELECT coalesce(sum(votes), 0) FROM analytics.daily_user_stats
    WHERE day BETWEEN %(lo)s AND %(hi)s) AS user_day_votes,
  (SELECT coalesce(sum(votes), 0) FROM analytics.daily_platform_metrics
    WHERE day BETWEEN %(lo)s AND %(hi)s) AS platform_votes
