-- A manual trigger or cancel, and who did it.
INSERT INTO analytics.etl_audit (run_id, action, actor_id, actor_role, details)
VALUES (%(run_id)s, %(action)s, %(actor_id)s, %(actor_role)s, %(details)s)
