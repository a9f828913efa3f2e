-- A run begins: its row is committed before the work starts.
INSERT INTO analytics.job_runs (task, trigger, job_id)
VALUES (%(task)s, %(trigger)s, %(job_id)s)
RETURNING id
