SELECT rank, display_name, scored_shows, mean_f1, model_f1_same_shows, crowd_f1_same_shows,
       coalesce(is_you, false) AS is_you
FROM analytics.setlist_leaderboard
ORDER BY rank, display_name
LIMIT %(limit)s
