-- Voting patterns: votes per day and per voted show over the range (show engagement
-- warehouse), and how accurate the setlist model, the crowd and their blend were on the
-- shows of the range that have been scored against the setlist actually played.
SELECT json_build_object(
  'per_day', (SELECT coalesce(json_agg(json_build_object(
                 'day', day, 'votes', votes, 'shows_voted', shows_voted,
                 'votes_per_show', round(votes::numeric / nullif(shows_voted, 0), 2))
                 ORDER BY day), '[]')
              FROM (SELECT day, sum(votes)::bigint AS votes,
                           count(*) FILTER (WHERE votes > 0) AS shows_voted
                    FROM analytics.show_engagement_warehouse
                    WHERE day >= %(since_day)s AND day <= %(until_day)s
                    GROUP BY day) AS d),
  'accuracy', (SELECT coalesce(json_agg(json_build_object(
                  'predictor', predictor, 'shows', shows, 'f1', f1, 'ndcg', ndcg,
                  'recall_at_10', recall_at_10) ORDER BY predictor), '[]')
               FROM (SELECT sc.predictor, count(*) AS shows, round(avg(sc.f1), 4) AS f1,
                            round(avg(sc.ndcg), 4) AS ndcg,
                            round(avg(sc.recall_at_10), 4) AS recall_at_10
                     FROM analytics.setlist_prediction_scores sc
                     JOIN app.shows s ON s.id = sc.show_id
                     WHERE s.starts_at >= %(since)s
                     GROUP BY sc.predictor) AS a)
) AS data
