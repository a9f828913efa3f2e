-- Stored models kept as numpy archives (the recommender's, whose rows are users).
SELECT id, name, version, artifact FROM analytics.ml_models
WHERE artifact_format = 'npz' AND artifact IS NOT NULL
