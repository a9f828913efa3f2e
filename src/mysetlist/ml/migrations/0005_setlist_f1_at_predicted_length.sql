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

-- The leaderboard computes every F1 it shows with the one function, fans and yardsticks.
CREATE OR REPLACE VIEW analytics.setlist_leaderboard AS
WITH fans AS (
  SELECT f.user_id, u.display_name, count(*) AS scored_shows,
         avg(analytics.setlist_f1(f.hits, f.picks, f.songs_played)) AS mean_f1,
         array_agg(f.show_id) AS shows
  FROM analytics.setlist_fan_scores f JOIN app.users u ON u.id = f.user_id
  WHERE u.deleted_at IS NULL
  GROUP BY f.user_id, u.display_name
  HAVING count(*) >= 3
)
SELECT rank() OVER (ORDER BY f.mean_f1 DESC, f.scored_shows DESC) AS rank,
       f.display_name, f.scored_shows, round(f.mean_f1, 4) AS mean_f1,
       (SELECT round(avg(analytics.setlist_f1(s.hits, s.shown, s.songs_played)), 4)
        FROM analytics.setlist_prediction_scores s
        WHERE s.predictor = 'model' AND s.show_id = ANY (f.shows)) AS model_f1_same_shows,
       (SELECT round(avg(analytics.setlist_f1(s.hits, s.shown, s.songs_played)), 4)
        FROM analytics.setlist_prediction_scores s
        WHERE s.predictor = 'crowd' AND s.show_id = ANY (f.shows)) AS crowd_f1_same_shows,
       f.user_id = auth.uid() AS is_you
FROM fans f;

COMMENT ON COLUMN analytics.setlist_prediction_scores.hits IS
  'songs played among the shown songs (the top `shown`)';
