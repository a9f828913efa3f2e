-- f1 at the length each predictor showed (`shown`), f1_at_n with the true length given.
SELECT predictor, voters, songs_played, shown, hits, f1, f1_at_n, ndcg, recall_at_10, scored_at
FROM analytics.setlist_prediction_scores WHERE show_id = %(show_id)s ORDER BY predictor
