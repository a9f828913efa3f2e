-- The audit trail: who did what to whom, from where, and how it ended. Append-only: no role
-- but the owner holds any privilege, and a trigger refuses UPDATE, DELETE and TRUNCATE even
-- to the owner. The one exception is a GDPR erasure, which may blank the identity columns
-- (actor_id, target_id, ip) of the erased user's entries inside its own transaction
-- (`SET LOCAL mysetlist.audit_redaction = 'on'`), and nothing else.

CREATE TABLE analytics.audit_log (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT now(),
  action       text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
  outcome      text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
  actor_id     uuid,
  actor_role   text,
  target_type  text,
  target_id    text,
  request_id   text,
  ip           inet,
  details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at_idx ON analytics.audit_log (at);
CREATE INDEX audit_log_action_at_idx ON analytics.audit_log (action, at);
CREATE INDEX audit_log_actor_idx ON analytics.audit_log (actor_id) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_log_target_idx ON analytics.audit_log (target_id) WHERE target_id IS NOT NULL;

COMMENT ON COLUMN analytics.audit_log.actor_id IS 'personal: user_id; erase: nullify';
COMMENT ON COLUMN analytics.audit_log.target_id IS 'personal: user_id; erase: nullify';
COMMENT ON COLUMN analytics.audit_log.ip IS 'personal: ip; erase: nullify';
COMMENT ON COLUMN analytics.audit_log.actor_role IS 'personal: none';

REVOKE ALL ON analytics.audit_log FROM PUBLIC, anon, authenticated, service_role;

CREATE FUNCTION analytics.audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND current_setting('mysetlist.audit_redaction', true) = 'on'
     AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.action = OLD.action
     AND NEW.outcome = OLD.outcome AND NEW.actor_role IS NOT DISTINCT FROM OLD.actor_role
     AND NEW.target_type IS NOT DISTINCT FROM OLD.target_type
     AND NEW.request_id IS NOT DISTINCT FROM OLD.request_id
     AND NEW.details = OLD.details
     AND (NEW.actor_id IS NULL OR NEW.actor_id = OLD.actor_id)
     AND (NEW.target_id IS NULL OR NEW.target_id = OLD.target_id)
     AND (NEW.ip IS NULL OR NEW.ip = OLD.ip) THEN
    RETURN NEW;  -- an erasure blanking identities, nothing more
  END IF;
  RAISE EXCEPTION 'analytics.audit_log is append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON analytics.audit_log
  FOR EACH ROW EXECUTE FUNCTION analytics.audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON analytics.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION analytics.audit_log_append_only();
