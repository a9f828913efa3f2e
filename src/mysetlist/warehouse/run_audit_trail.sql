-- Who triggered and cancelled a run.
SELECT action, actor_id, actor_role, at, details
  FROM analytics.etl_audit
 WHERE run_id = %(run_id)s
 ORDER BY id
