-- A run started here and now (schedule, CLI); the unique index on active runs refuses a
-- second one.
INSERT INTO analytics.etl_runs
  (trigger, mode, from_day, to_day, steps, status, started_at, attempt,
   requested_by, requested_by_role)
VALUES (%(trigger)s, %(mode)s, %(from_day)s, %(to_day)s, %(steps)s, 'running', now(), 1,
        %(requested_by)s, %(requested_by_role)s)
RETURNING *
