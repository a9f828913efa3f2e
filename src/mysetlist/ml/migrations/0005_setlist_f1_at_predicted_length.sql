-- Setlist predictions are scored at the length they show: F1 = 2·hits / (shown + played),
-- one function for the model, the crowd, the blend and every fan (a fan shows their picks).
-- F1 with the true length given (hits among the top N, N songs played) stays as the
-- secondary column f1_at_n. Scores made before this migration were at N for the model, the
-- crowd and the blend: shown = songs_played keeps their f1 exact (2h/2N = h/N).

CREATE FUNCTION analytics.setlist_f1(hits integer, shown integer, played integer)
RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  -- A score without a shown length was made at the true length (shown = played).
  SELECT CASE WHEN coalesce(shown, played) + played > 0
              THEN round(2.0 * hits / (coalesce(shown, played) + played), 4) ELSE 0 END
$$;
COMMENT ON FUNCTION analytics.setlist_f1(integer, integer, integer) IS
  'F1 of a shown set of setlist songs: 2 * hits / (songs shown + songs played)';

ALTER TABLE analytics.setlist_prediction_scores
  ADD COLUMN shown integer,
  ADD COLUMN f1_at_n numeric(6,4);
UPDATE analytics.setlist_prediction_scores SET shown = songs_played, f1_at_n = f1;
COMMENT ON COLUMN analytics.setlist_prediction_scores.shown IS
  'songs the predictor showed: the predicted length (at most the songs it ranked)';
COMMENT ON COLUMN analytics.setlist_prediction_scores.f1 IS
  'F1 at the shown length: analytics.setlist_f1(hits, shown, songs_played)';
COMMENT ON COLUMN analytics.setlist_prediction_scores.f1_at_n IS
  'hits among the top songs_played / songs_played (the true length given)';

-- The leaderboard view computes every F1 it shows with this function: migration 0006.

COMMENT ON COLUMN analytics.setlist_prediction_scores.hits IS
  'songs played among the shown songs (the top `shown`)';
