-- Upsert that only moves forward: GREATEST ignores NULLs, so a field not given (NULL)
-- keeps its value, and an older value than the stored one changes nothing.
INSERT INTO analytics.watermarks AS w (name, position, last_full_day, run_id, updated_at)
VALUES (%(name)s, %(position)s, %(last_full_day)s, %(run_id)s, now())
ON CONFLICT (name) DO UPDATE
   SET position = GREATEST(w.position, EXCLUDED.position),
       last_full_day = GREATEST(w.last_full_day, EXCLUDED.last_full_day),
       run_id = COALESCE(EXCLUDED.run_id, w.run_id),
       updated_at = now()
