-- A prediction is sealed by the real time of its insertion, not by the made_at it claims: a
-- row written after the show started is refused even when it is backdated, and made_at
-- cannot lie in the future.
CREATE OR REPLACE FUNCTION analytics.setlist_predictions_guard() RETURNS trigger
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
  ELSIF EXISTS (SELECT 1 FROM app.shows s
                WHERE s.id = NEW.show_id
                  AND (s.starts_at <= clock_timestamp() OR s.starts_at <= NEW.made_at)) THEN
    RAISE EXCEPTION 'show % has started: no new predictions', NEW.show_id
      USING ERRCODE = 'check_violation';
  ELSIF NEW.made_at > clock_timestamp() THEN
    RAISE EXCEPTION 'a prediction cannot be made in the future' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;
