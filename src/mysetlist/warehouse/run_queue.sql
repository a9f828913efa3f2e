-- A run queued through the API (its job is deferred in the same transaction).
INSERT INTO analytics.etl_runs
  (trigger, mode, from_day, to_day, steps, status, requested_by, requested_by_role)
VALUES ('api', %(mode)s, %(from_day)s, %(to_day)s, %(steps)s, 'queued', %(actor_id)s,
        %(actor_role)s)
RETURNING id
