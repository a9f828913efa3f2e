-- Voting accuracy per user, show and artist from app.setlist_votes. A show has happened
-- when it is not cancelled and is completed or has an actual setlist; a vote is correct
-- when its song is in that setlist; accuracy = correct / votes on happened shows (NULL
-- when there are none). Scope: everything when full; otherwise (incremental runs) only
-- the user grain, for the users in the temp table etl_scope (kind 'user'), which the
-- pipeline fills — show and artist grains are recomputed by full runs. Params: full.

-- One row per fan and show: the fan's votes on it, how many were correct, whether the
-- show happened. The three grains roll up from these rows (a fifth as many as votes, and
-- no count(DISTINCT) over votes), and an incremental run builds only its fans' rows,
-- each vote looked up in the setlist through the (show_id, song_id) index instead of
-- hashing every played song (that hash was nine tenths of the incremental step).
CREATE TEMP TABLE etl_fan_votes ON COMMIT DROP AS
SELECT v.user_id, v.show_id, s.artist_id, v.votes, v.first_vote_at, v.last_vote_at,
       (s.status <> 'cancelled' AND (s.status = 'completed' OR pl.played)) AS happened,
       CASE WHEN s.status <> 'cancelled' THEN v.in_setlist ELSE 0 END AS correct
FROM (
  SELECT v.user_id, v.show_id, count(*) AS votes, count(played.song_id) AS in_setlist,
         min(v.created_at) AS first_vote_at, max(v.created_at) AS last_vote_at
  FROM app.setlist_votes v
  -- DISTINCT: a song played twice (an encore) is still one correct prediction.
  LEFT JOIN (SELECT DISTINCT show_id, song_id FROM app.setlist_songs) played
    ON played.show_id = v.show_id AND played.song_id = v.song_id
  WHERE %(full)s
  GROUP BY v.user_id, v.show_id
  UNION ALL
  -- driven by the (small) scope, so the votes come through the user_id index
  -- (LATERAL … LIMIT 1: one index probe per vote; an EXISTS here gets planned as a hash
  -- of every played song)
  SELECT v.user_id, v.show_id, count(*), count(hit.song_id), min(v.created_at),
         max(v.created_at)
  FROM etl_scope sc JOIN app.setlist_votes v ON v.user_id = sc.user_id
  LEFT JOIN LATERAL (
    SELECT ss.song_id FROM app.setlist_songs ss
    WHERE ss.show_id = v.show_id AND ss.song_id = v.song_id LIMIT 1
  ) hit ON true
  WHERE NOT %(full)s AND sc.kind = 'user'
  GROUP BY v.user_id, v.show_id
) v
JOIN app.shows s ON s.id = v.show_id
LEFT JOIN LATERAL (
  SELECT true AS played FROM app.setlist_songs ss WHERE ss.show_id = v.show_id LIMIT 1
) pl ON true;

DELETE FROM analytics.voting_patterns_warehouse w
WHERE %(full)s OR (w.grain, w.scope_id) IN (SELECT kind, id FROM etl_scope);

INSERT INTO analytics.voting_patterns_warehouse AS t (
  grain, scope_id, user_id, show_id, artist_id, votes, voters, shows_voted,
  votes_on_happened_shows, correct_votes, accuracy, first_vote_at, last_vote_at)
SELECT grain, scope_id, user_id, show_id, artist_id, votes, voters, shows_voted, happened,
       correct, CASE WHEN happened > 0 THEN round(correct::numeric / happened, 4) END,
       first_vote_at, last_vote_at
FROM (
  SELECT 'user' AS grain, user_id::text AS scope_id, user_id, NULL::bigint AS show_id,
         NULL::bigint AS artist_id, sum(votes) AS votes, 1::bigint AS voters,
         count(*) AS shows_voted,
         coalesce(sum(votes) FILTER (WHERE happened), 0) AS happened,
         coalesce(sum(correct) FILTER (WHERE happened), 0) AS correct,
         min(first_vote_at) AS first_vote_at, max(last_vote_at) AS last_vote_at
  FROM etl_fan_votes
  WHERE %(full)s OR user_id IN (SELECT user_id FROM etl_scope WHERE kind = 'user')
  GROUP BY user_id
  UNION ALL
  SELECT 'show', show_id::text, NULL, show_id, artist_id, sum(votes), count(*), 1,
         coalesce(sum(votes) FILTER (WHERE happened), 0),
         coalesce(sum(correct) FILTER (WHERE happened), 0),
         min(first_vote_at), max(last_vote_at)
  FROM etl_fan_votes
  WHERE %(full)s
  GROUP BY show_id, artist_id
  UNION ALL
  SELECT 'artist', artist_id::text, NULL, NULL, artist_id, sum(votes), count(DISTINCT user_id),
         count(DISTINCT show_id), coalesce(sum(votes) FILTER (WHERE happened), 0),
         coalesce(sum(correct) FILTER (WHERE happened), 0), min(first_vote_at), max(last_vote_at)
  FROM etl_fan_votes
  WHERE %(full)s
  GROUP BY artist_id
) g
ON CONFLICT (grain, scope_id) DO UPDATE SET
  votes = EXCLUDED.votes, voters = EXCLUDED.voters, shows_voted = EXCLUDED.shows_voted,
  votes_on_happened_shows = EXCLUDED.votes_on_happened_shows,
  correct_votes = EXCLUDED.correct_votes, accuracy = EXCLUDED.accuracy,
  first_vote_at = EXCLUDED.first_vote_at, last_vote_at = EXCLUDED.last_vote_at;

-- Prediction F1 (step setlist_prediction_scores ran first): per user over their scored
-- shows, per show and per artist over every fan's scored picks.
UPDATE analytics.voting_patterns_warehouse w
SET scored_predictions = f.n, mean_prediction_f1 = f.mean_f1
FROM (
  SELECT 'user' AS grain, user_id::text AS scope_id, count(*) AS n, round(avg(f1), 4) AS mean_f1
  FROM analytics.setlist_fan_scores
  WHERE %(full)s OR user_id IN (SELECT user_id FROM etl_scope WHERE kind = 'user')
  GROUP BY user_id
  UNION ALL
  SELECT 'show', show_id::text, count(*), round(avg(f1), 4)
  FROM analytics.setlist_fan_scores WHERE %(full)s GROUP BY show_id
  UNION ALL
  SELECT 'artist', s.artist_id::text, count(*), round(avg(f.f1), 4)
  FROM analytics.setlist_fan_scores f JOIN app.shows s ON s.id = f.show_id
  WHERE %(full)s GROUP BY s.artist_id
) f
WHERE w.grain = f.grain AND w.scope_id = f.scope_id
  AND (w.scored_predictions, w.mean_prediction_f1) IS DISTINCT FROM (f.n, f.mean_f1);
