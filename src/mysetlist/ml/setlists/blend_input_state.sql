-- What a blend of the show is computed from as of this moment (clock time, not the
-- transaction's start: a model prediction a concurrent request committed meanwhile counts):
-- the latest model prediction, and the show's votes as a count plus an order-free digest of
-- their (fan, song) pairs (a vote added, removed or changed changes it). Only the aggregate
-- leaves this query, no user id.
SELECT at.as_of,
       (SELECT p.id FROM analytics.setlist_predictions p
        WHERE p.show_id = %(show_id)s AND p.kind = 'model' AND p.made_at <= at.as_of
        ORDER BY p.made_at DESC, p.id DESC LIMIT 1) AS model_prediction,
       v.votes, v.votes_digest
FROM (SELECT clock_timestamp() AS as_of) at
CROSS JOIN LATERAL (
  SELECT count(*) AS votes,
         coalesce(sum(hashtextextended(x.user_id::text || ':' || x.song_id::text, 0)::numeric),
                  0) AS votes_digest
  FROM app.setlist_votes x
  WHERE x.show_id = %(show_id)s AND x.created_at <= at.as_of
) v
