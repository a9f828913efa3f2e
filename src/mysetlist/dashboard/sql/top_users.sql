-- The ten most engaged users active in the range (engagement score, then votes).
SELECT coalesce(json_agg(t ORDER BY t.engagement_score DESC, t.votes DESC), '[]') AS data
FROM (
  SELECT b.user_id, u.display_name, b.engagement_score, b.active_days, b.sessions, b.votes,
         b.voting_accuracy, b.last_active_day
  FROM analytics.user_behavior_warehouse b
  LEFT JOIN app.users u ON u.id = b.user_id
  WHERE b.last_active_day >= %(since_day)s
  ORDER BY b.engagement_score DESC, b.votes DESC
  LIMIT 10
) AS t
