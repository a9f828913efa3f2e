-- Scores every played setlist against what was predicted before the show: the model (its
-- latest stored prediction), the crowd (songs by share of the fans who voted before the
-- show) and the blend of both (analytics.setlist_blend as of the show's start); then each
-- fan's own picks. Everyone is scored at the length they show, with one formula,
-- analytics.setlist_f1(hits, shown, played) = 2·hits / (shown + played): the model and the
-- blend show the model's predicted length, the crowd the same length (the product shows
-- that many songs; the voters' mean number of picks when the model made no prediction),
-- a fan their picks; never more songs than were ranked. f1_at_n and NDCG rank with N, the
-- number of distinct songs played, given. A show is played when it is not cancelled and
-- has its actual setlist. Recomputed in full (one row per show and predictor, a few per
-- fan): cheap next to the day loads.
-- Only the played shows anyone predicted (a model prediction or a fan's vote): the others
-- get no score row, and most played shows are old ones nobody voted on (on the bench's
-- world 8,601 played shows, under 800 scored).
CREATE TEMP TABLE etl_played ON COMMIT DROP AS
SELECT DISTINCT ss.show_id, ss.song_id, s.starts_at
FROM app.setlist_songs ss JOIN app.shows s ON s.id = ss.show_id
WHERE s.status <> 'cancelled'
  AND (EXISTS (SELECT 1 FROM app.setlist_votes v WHERE v.show_id = s.id)
       OR EXISTS (SELECT 1 FROM analytics.setlist_predictions p
                   WHERE p.show_id = s.id AND p.kind = 'model'));

-- The DCG discount 1 / log2(rank + 1) per rank, computed once (numeric log per ranked
-- song and per show's ideal DCG was a third of the step); numeric, so the sums are the
-- same as computing it in place.
CREATE TEMP TABLE etl_discount ON COMMIT DROP AS
SELECT k AS rank, 1.0 / log(2.0, k + 1.0) AS d
FROM generate_series(1, greatest((SELECT max(n) FROM (SELECT count(*) AS n FROM etl_played GROUP BY show_id) c), 10)) k;

CREATE TEMP TABLE etl_played_n ON COMMIT DROP AS
SELECT show_id, starts_at, count(*)::integer AS n FROM etl_played GROUP BY show_id, starts_at;

CREATE TEMP TABLE etl_ranked ON COMMIT DROP AS
WITH model AS (
  SELECT DISTINCT ON (p.show_id) p.show_id, p.id AS prediction_id, p.songs, p.predicted_length
  FROM analytics.setlist_predictions p JOIN etl_played_n n ON n.show_id = p.show_id
  WHERE p.kind = 'model' AND p.made_at < n.starts_at
  ORDER BY p.show_id, p.made_at DESC, p.id DESC
),
-- The voters' mean number of picks per show (the crowd's own length without a model).
picks AS (
  SELECT v.show_id, greatest(1, round(count(*)::numeric / count(DISTINCT v.user_id)))::integer AS mean_picks
  FROM app.setlist_votes v JOIN etl_played_n n ON n.show_id = v.show_id
  WHERE v.created_at <= n.starts_at
  GROUP BY v.show_id
)
SELECT m.show_id, 'model'::text AS predictor, m.prediction_id, 0 AS voters, m.predicted_length AS length,
       (e.value->>'song_id')::bigint AS song_id, e.ordinality::integer AS rank
FROM model m, jsonb_array_elements(m.songs) WITH ORDINALITY e
UNION ALL
SELECT n.show_id, 'crowd', NULL, c.voters, coalesce(m.predicted_length, k.mean_picks), c.song_id,
       row_number() OVER (PARTITION BY n.show_id ORDER BY c.share DESC, c.song_id)::integer
FROM etl_played_n n LEFT JOIN model m ON m.show_id = n.show_id
     LEFT JOIN picks k ON k.show_id = n.show_id,
     LATERAL analytics.setlist_crowd(n.show_id, n.starts_at) c
UNION ALL
SELECT n.show_id, 'blend', m.prediction_id, b.voters, m.predicted_length, b.song_id,
       row_number() OVER (PARTITION BY n.show_id ORDER BY b.probability DESC, b.song_id)::integer
FROM etl_played_n n JOIN model m ON m.show_id = n.show_id,
     LATERAL analytics.setlist_blend(n.show_id, n.starts_at) b;

DELETE FROM analytics.setlist_prediction_scores s
WHERE NOT EXISTS (SELECT 1 FROM etl_ranked r WHERE r.show_id = s.show_id AND r.predictor = s.predictor);

INSERT INTO analytics.setlist_prediction_scores AS t
  (show_id, predictor, prediction_id, voters, songs_played, shown, hits, f1, f1_at_n, ndcg,
   recall_at_10, scored_at)
SELECT g.show_id, g.predictor, g.prediction_id, g.voters, g.n, g.shown, g.hits_shown,
       analytics.setlist_f1(g.hits_shown, g.shown, g.n),
       round(g.hits_n::numeric / g.n, 4),
       round((g.dcg / (SELECT sum(d) FROM etl_discount WHERE rank <= g.n))::numeric, 4),
       round(g.hits10::numeric / g.n, 4), now()
FROM (
  SELECT r.show_id, r.predictor, max(r.prediction_id) AS prediction_id, max(r.voters) AS voters,
         n.n, least(max(r.length), count(*))::integer AS shown,
         count(p.song_id) FILTER (WHERE r.rank <= r.length)::integer AS hits_shown,
         count(p.song_id) FILTER (WHERE r.rank <= n.n)::integer AS hits_n,
         coalesce(sum(dc.d) FILTER (WHERE r.rank <= n.n AND p.song_id IS NOT NULL), 0) AS dcg,
         count(p.song_id) FILTER (WHERE r.rank <= 10) AS hits10
  FROM etl_ranked r
  JOIN etl_played_n n ON n.show_id = r.show_id
  LEFT JOIN etl_played p ON p.show_id = r.show_id AND p.song_id = r.song_id
  LEFT JOIN etl_discount dc ON dc.rank = r.rank
  GROUP BY r.show_id, r.predictor, n.n
) g
ON CONFLICT (show_id, predictor) DO UPDATE SET
  prediction_id = EXCLUDED.prediction_id, voters = EXCLUDED.voters,
  songs_played = EXCLUDED.songs_played, shown = EXCLUDED.shown, hits = EXCLUDED.hits,
  f1 = EXCLUDED.f1, f1_at_n = EXCLUDED.f1_at_n, ndcg = EXCLUDED.ndcg,
  recall_at_10 = EXCLUDED.recall_at_10, scored_at = EXCLUDED.scored_at
WHERE (t.prediction_id, t.voters, t.shown, t.hits, t.f1, t.f1_at_n, t.ndcg, t.recall_at_10)
      IS DISTINCT FROM (EXCLUDED.prediction_id, EXCLUDED.voters, EXCLUDED.shown, EXCLUDED.hits,
                        EXCLUDED.f1, EXCLUDED.f1_at_n, EXCLUDED.ndcg, EXCLUDED.recall_at_10);

-- Fans: their picks cast before the show against the songs played. (A fan votes for a
-- song once: app.setlist_votes is UNIQUE (user_id, show_id, song_id), so a vote is a pick
-- without a DISTINCT; here and in `picks` above.)
CREATE TEMP TABLE etl_fan_scores ON COMMIT DROP AS
SELECT v.user_id, v.show_id, count(*)::integer AS picks, n.n,
       count(p.song_id)::integer AS hits
FROM app.setlist_votes v
JOIN etl_played_n n ON n.show_id = v.show_id
LEFT JOIN etl_played p ON p.show_id = v.show_id AND p.song_id = v.song_id
WHERE v.created_at <= n.starts_at
GROUP BY v.user_id, v.show_id, n.n;

DELETE FROM analytics.setlist_fan_scores f
WHERE NOT EXISTS (SELECT 1 FROM etl_fan_scores e WHERE e.user_id = f.user_id AND e.show_id = f.show_id);

INSERT INTO analytics.setlist_fan_scores AS t (user_id, show_id, picks, songs_played, hits, f1, scored_at)
SELECT user_id, show_id, picks, n, hits, analytics.setlist_f1(hits, picks, n), now()
FROM etl_fan_scores
ON CONFLICT (user_id, show_id) DO UPDATE SET
  picks = EXCLUDED.picks, songs_played = EXCLUDED.songs_played, hits = EXCLUDED.hits,
  f1 = EXCLUDED.f1, scored_at = EXCLUDED.scored_at
WHERE (t.picks, t.songs_played, t.hits) IS DISTINCT FROM (EXCLUDED.picks, EXCLUDED.songs_played, EXCLUDED.hits);
