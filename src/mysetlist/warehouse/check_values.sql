-- Rows out of range, per table: each condition must hold for no row. Day-grained tables
-- are counted only over %(lo)s..%(hi)s when a range is given (incremental runs check
-- their own days), the whole table otherwise.
SELECT
  (SELECT count(*) FROM analytics.daily_user_stats
    WHERE (events < 0 OR page_views < 0 OR sessions < 0 OR votes < 0 OR unique_pages > events
           OR sessions > events OR event_types > events)
      AND (%(lo)s::date IS NULL OR day BETWEEN %(lo)s AND %(hi)s)) AS daily_user_stats,
  (SELECT count(*) FROM analytics.user_engagement_warehouse
    WHERE (engagement_score < 0 OR engagement_score > 1 OR engagement_score <>
           session_score + page_view_score + diversity_score + event_type_score)
      AND (%(lo)s::date IS NULL OR day BETWEEN %(lo)s AND %(hi)s)) AS user_engagement_warehouse,
  (SELECT count(*) FROM analytics.user_behavior_warehouse
    WHERE engagement_score < 0 OR engagement_score > 1 OR voting_accuracy < 0
       OR voting_accuracy > 1 OR correct_votes > votes_on_happened_shows
  ) AS user_behavior_warehouse,
  (SELECT count(*) FROM analytics.voting_patterns_warehouse
    WHERE accuracy < 0 OR accuracy > 1 OR correct_votes > votes_on_happened_shows
       OR votes_on_happened_shows > votes) AS voting_patterns_warehouse,
  (SELECT count(*) FROM analytics.artist_popularity_warehouse
    WHERE (activity < 0 OR artist_views < 0 OR votes < 0 OR trending_score < -1)
      AND (%(lo)s::date IS NULL OR day BETWEEN %(lo)s AND %(hi)s)) AS artist_popularity_warehouse,
  (SELECT count(*) FROM analytics.daily_platform_metrics
    WHERE (active_users > wau OR wau > mau OR stickiness > 1 OR identified_events > events_total)
      AND (%(lo)s::date IS NULL OR day BETWEEN %(lo)s AND %(hi)s)) AS daily_platform_metrics
