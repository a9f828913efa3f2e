-- At most one row per (show, kind, input state): a concurrent request that computed the same
-- prediction adds nothing.
INSERT INTO analytics.setlist_predictions
  (show_id, kind, model, history_shows, voters, predicted_length, songs, input_state)
VALUES (%(show_id)s, %(kind)s, %(model)s, %(history_shows)s, %(voters)s,
        %(predicted_length)s, %(songs)s, %(input_state)s)
ON CONFLICT (show_id, kind, input_state) DO NOTHING
RETURNING id
