-- A stored prediction is keyed by what it was computed from, so reading a predicted setlist
-- never adds a row per request: one row per (show, kind, input state). The input state of a
-- model prediction is the model's name and a digest of its inputs (the show's date, city and
-- tour, the artist's setlists played before it); of a blend, the model prediction it blends
-- and a digest of the show's votes. Rows made before this column existed keep NULL (unique
-- indexes let NULLs repeat). The append-only rule and the seal at the show's start stand.
ALTER TABLE analytics.setlist_predictions ADD COLUMN input_state text;
CREATE UNIQUE INDEX setlist_predictions_input_state_key
  ON analytics.setlist_predictions (show_id, kind, input_state);
