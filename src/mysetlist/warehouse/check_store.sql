-- One quality check's result for a run (its earlier results were deleted first).
INSERT INTO analytics.etl_quality_checks (run_id, name, category, passed, details)
VALUES (%(run_id)s, %(name)s, %(category)s, %(passed)s, %(details)s)
