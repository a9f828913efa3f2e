INSERT INTO analytics.setlist_predictions
  (show_id, kind, model, history_shows, voters, predicted_length, songs)
VALUES (%(show_id)s, %(kind)s, %(model)s, %(history_shows)s, %(voters)s,
        %(predicted_length)s, %(songs)s)
RETURNING id
