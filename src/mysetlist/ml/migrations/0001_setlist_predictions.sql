-- Setlist predictions: the model's (and the model blended with the crowd's votes) for a
-- show, stored when made. Rows are append-only; none can be added once the show has
-- started, so what is scored after the show is what was predicted before it.

CREATE TABLE analytics.setlist_predictions (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  show_id           bigint NOT NULL REFERENCES app.shows (id) ON DELETE CASCADE,
  kind              text NOT NULL CHECK (kind IN ('model', 'blend')),
  model             text NOT NULL,
  made_at           timestamptz NOT NULL DEFAULT now(),
  history_shows     integer NOT NULL,            -- past shows of the artist the model saw
  voters            integer NOT NULL DEFAULT 0,  -- fans whose votes a blend used
  predicted_length  integer NOT NULL,
  songs             jsonb NOT NULL  -- ranked: [{"song_id", "title", "probability", "reason"}]
);
CREATE INDEX setlist_predictions_show_idx ON analytics.setlist_predictions (show_id, kind, made_at DESC);

CREATE FUNCTION analytics.setlist_predictions_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'setlist predictions cannot be changed once made'
      USING ERRCODE = 'check_violation';
  ELSIF TG_OP = 'DELETE' THEN
    -- Only the cascade from a deleted show (a trigger inside a trigger) may remove them.
    IF pg_trigger_depth() < 2 THEN
      RAISE EXCEPTION 'setlist predictions cannot be deleted' USING ERRCODE = 'check_violation';
    END IF;
    RETURN OLD;
  ELSIF EXISTS (SELECT 1 FROM app.shows s WHERE s.id = NEW.show_id AND s.starts_at <= NEW.made_at)
        OR NEW.made_at > clock_timestamp() + interval '1 minute' THEN
    RAISE EXCEPTION 'show % has started: no new predictions', NEW.show_id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER setlist_predictions_append_only
  BEFORE INSERT OR UPDATE OR DELETE ON analytics.setlist_predictions
  FOR EACH ROW EXECUTE FUNCTION analytics.setlist_predictions_guard();

-- Scores of the model, the crowd and the blend against the setlist actually played:
-- top-N with N the number of distinct songs played (as in the offline evaluation).
CREATE TABLE analytics.setlist_prediction_scores (
  show_id        bigint NOT NULL REFERENCES app.shows (id) ON DELETE CASCADE,
  predictor      text NOT NULL CHECK (predictor IN ('model', 'crowd', 'blend')),
  prediction_id  bigint REFERENCES analytics.setlist_predictions (id) ON DELETE CASCADE,
  voters         integer NOT NULL DEFAULT 0,
  songs_played   integer NOT NULL,
  hits           integer NOT NULL,
  f1             numeric(6,4) NOT NULL,
  ndcg           numeric(6,4) NOT NULL,
  recall_at_10   numeric(6,4) NOT NULL,
  scored_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (show_id, predictor)
);

-- The crowd's picks for a show as of a time: per song, the share of the show's voters who
-- picked it (a fan picks a song once).
CREATE FUNCTION analytics.setlist_crowd(p_show bigint, p_as_of timestamptz)
RETURNS TABLE (song_id bigint, voters integer, share double precision)
LANGUAGE sql STABLE AS $$
  WITH v AS (
    SELECT user_id, song_id FROM app.setlist_votes
    WHERE show_id = p_show AND created_at <= p_as_of
  ), n AS (SELECT count(DISTINCT user_id)::integer AS voters FROM v)
  SELECT v.song_id, n.voters, count(DISTINCT v.user_id)::double precision / n.voters
  FROM v CROSS JOIN n
  GROUP BY v.song_id, n.voters
$$;

-- The blend: (1 - a) * model probability + a * crowd share, where a = voters / (voters + 20)
-- trusts the crowd more as it grows (20 voters weigh as much as the model). The model side
-- is the latest model prediction made up to p_as_of.
CREATE FUNCTION analytics.setlist_blend(p_show bigint, p_as_of timestamptz)
RETURNS TABLE (song_id bigint, probability double precision, model_probability double precision,
               crowd_share double precision, voters integer)
LANGUAGE sql STABLE AS $$
  WITH model AS (
    SELECT (e->>'song_id')::bigint AS song_id, (e->>'probability')::double precision AS p
    FROM (SELECT songs FROM analytics.setlist_predictions
          WHERE show_id = p_show AND kind = 'model' AND made_at <= p_as_of
          ORDER BY made_at DESC, id DESC LIMIT 1) latest,
         jsonb_array_elements(latest.songs) e
  ), crowd AS (SELECT * FROM analytics.setlist_crowd(p_show, p_as_of)),
  n AS (SELECT coalesce(max(voters), 0) AS voters FROM crowd)
  SELECT coalesce(m.song_id, c.song_id),
         (1 - n.voters / (n.voters + 20.0)) * coalesce(m.p, 0)
           + n.voters / (n.voters + 20.0) * coalesce(c.share, 0),
         m.p, c.share, n.voters::integer
  FROM model m FULL JOIN crowd c ON c.song_id = m.song_id CROSS JOIN n
$$;

-- Predictions of upcoming shows are public; signed-in fans also see past ones (with scores).
ALTER TABLE analytics.setlist_predictions ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.setlist_predictions FORCE ROW LEVEL SECURITY;
CREATE POLICY "Public predictions of upcoming shows" ON analytics.setlist_predictions
  FOR SELECT TO anon
  USING (EXISTS (SELECT 1 FROM app.shows s WHERE s.id = show_id AND s.starts_at > now()));
CREATE POLICY "Fans see every prediction" ON analytics.setlist_predictions
  FOR SELECT TO authenticated, service_role USING (true);
ALTER TABLE analytics.setlist_prediction_scores ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.setlist_prediction_scores FORCE ROW LEVEL SECURITY;
CREATE POLICY "Scores are public" ON analytics.setlist_prediction_scores
  FOR SELECT TO anon, authenticated, service_role USING (true);
GRANT USAGE ON SCHEMA analytics TO anon;
GRANT SELECT ON analytics.setlist_predictions, analytics.setlist_prediction_scores
  TO anon, authenticated, service_role;

-- The owner role (the API's writes, the warehouse's scoring) where it is not a superuser.
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['setlist_predictions', 'setlist_prediction_scores'] LOOP
    EXECUTE format(
      'CREATE POLICY "Owner role full access" ON analytics.%I FOR ALL TO %I USING (true) WITH CHECK (true)',
      t, current_user);
  END LOOP;
END
$$;

-- Each fan's picks for a played show, scored like the model: hits among the picks and
-- F1 = 2 * hits / (picks + songs played).
CREATE TABLE analytics.setlist_fan_scores (
  user_id       uuid NOT NULL REFERENCES app.users (id) ON DELETE CASCADE,
  show_id       bigint NOT NULL REFERENCES app.shows (id) ON DELETE CASCADE,
  picks         integer NOT NULL,
  songs_played  integer NOT NULL,
  hits          integer NOT NULL,
  f1            numeric(6,4) NOT NULL,
  scored_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, show_id)
);
CREATE INDEX setlist_fan_scores_show_idx ON analytics.setlist_fan_scores (show_id);
ALTER TABLE analytics.setlist_fan_scores ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.setlist_fan_scores FORCE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own analytics" ON analytics.setlist_fan_scores FOR SELECT
  TO authenticated USING (auth.uid() = user_id);
CREATE POLICY "Operators can view all analytics" ON analytics.setlist_fan_scores FOR SELECT
  TO authenticated USING (auth.is_admin());
GRANT SELECT ON analytics.setlist_fan_scores TO authenticated;
DO $$
BEGIN
  EXECUTE format(
    'CREATE POLICY "Owner role full access" ON analytics.setlist_fan_scores FOR ALL TO %I USING (true) WITH CHECK (true)',
    current_user);
END
$$;

-- The best predictors: fans with 3+ scored shows by mean F1, with the model, the crowd and
-- the blend over the same shows as yardsticks. Shows display names only (no user ids), so
-- it runs with its owner's rights and is public.
CREATE VIEW analytics.setlist_leaderboard AS
WITH fans AS (
  SELECT f.user_id, u.display_name, count(*) AS scored_shows, avg(f.f1) AS mean_f1,
         array_agg(f.show_id) AS shows
  FROM analytics.setlist_fan_scores f JOIN app.users u ON u.id = f.user_id
  WHERE u.deleted_at IS NULL
  GROUP BY f.user_id, u.display_name
  HAVING count(*) >= 3
)
SELECT rank() OVER (ORDER BY f.mean_f1 DESC, f.scored_shows DESC) AS rank,
       f.display_name, f.scored_shows, round(f.mean_f1, 4) AS mean_f1,
       (SELECT round(avg(s.f1), 4) FROM analytics.setlist_prediction_scores s
        WHERE s.predictor = 'model' AND s.show_id = ANY (f.shows)) AS model_f1_same_shows,
       (SELECT round(avg(s.f1), 4) FROM analytics.setlist_prediction_scores s
        WHERE s.predictor = 'crowd' AND s.show_id = ANY (f.shows)) AS crowd_f1_same_shows,
       f.user_id = auth.uid() AS is_you
FROM fans f;
GRANT SELECT ON analytics.setlist_leaderboard TO anon, authenticated, service_role;
