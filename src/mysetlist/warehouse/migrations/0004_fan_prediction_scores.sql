-- Fans scored like the setlist model: at each grain, the shows with a scored prediction
-- (the fan's picks against the songs played, analytics.setlist_fan_scores) and their mean F1.
ALTER TABLE analytics.voting_patterns_warehouse
  ADD COLUMN scored_predictions bigint NOT NULL DEFAULT 0,
  ADD COLUMN mean_prediction_f1 numeric(6,4);
