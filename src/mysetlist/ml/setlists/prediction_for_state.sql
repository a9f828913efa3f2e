-- The stored prediction of a kind for a show made from exactly this input state.
SELECT p.id, p.kind, p.model, p.made_at, p.history_shows, p.voters, p.predicted_length, p.songs
FROM analytics.setlist_predictions p
WHERE p.show_id = %(show_id)s AND p.kind = %(kind)s AND p.input_state = %(input_state)s
