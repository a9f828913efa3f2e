SELECT predictor, voters, songs_played, hits, f1, ndcg, recall_at_10, scored_at
FROM analytics.setlist_prediction_scores WHERE show_id = %(show_id)s ORDER BY predictor
