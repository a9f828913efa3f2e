-- The public setlist leaderboard shows only fans who chose to be discoverable
-- (app.users.discoverable, platform migration 0004), plus the caller's own row for a
-- signed-in fan (`is_you`); ranks are among the fans shown. Same columns as before (0001);
-- still no user ids. Every F1 through analytics.setlist_f1 (0005): one formula for all.
-- security_barrier: a reader's conditions run after the consent rule.
CREATE OR REPLACE VIEW analytics.setlist_leaderboard WITH (security_barrier = true) AS
WITH fans AS (
  SELECT f.user_id, u.display_name, count(*) AS scored_shows,
         avg(analytics.setlist_f1(f.hits, f.picks, f.songs_played)) AS mean_f1,
         array_agg(f.show_id) AS shows
  FROM analytics.setlist_fan_scores f JOIN app.users u ON u.id = f.user_id
  WHERE u.deleted_at IS NULL
    AND (u.discoverable OR u.id = auth.uid())
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
