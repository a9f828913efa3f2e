-- What a blend of the show is computed from right now (analytics.setlist_blend as of now()):
-- the latest model prediction, and the show's votes as a count plus an order-free digest of
-- their (fan, song) pairs (a vote added, removed or changed changes it). No user id leaves
-- this query, only the aggregate.
SELECT (SELECT p.id FROM analytics.setlist_predictions p
        WHERE p.show_id = %(show_id)s AND p.kind = 'model' AND p.made_at <= now()
        ORDER BY p.made_at DESC, p.id DESC LIMIT 1) AS model_prediction,
       count(*) AS votes,
       coalesce(sum(hashtextextended(v.user_id::text || ':' || v.song_id::text, 0)::numeric), 0)
         AS votes_digest
FROM app.setlist_votes v
WHERE v.show_id = %(show_id)s AND v.created_at <= now()
