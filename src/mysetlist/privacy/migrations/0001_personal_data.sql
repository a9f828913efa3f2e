-- Personal data is discovered from the catalogue (mysetlist.privacy.discovery), not listed:
-- a column referencing app.users is a user id; any other column that identifies a person or
-- holds data about one carries a comment `personal: <kind>[; erase: <action>]`:
--   kind   user_id | anonymous_id | session_id | email_hash | ip | contact | model_user_ids
--          (contact: personal content that goes with its row, found through another column)
--   erase  delete (the row; the default) | nullify (the column) | keep (kept by design) |
--          scrub (the user's entries inside a stored model artifact)
-- Columns declared here belong to tables created before this convention; new tables declare
-- in their own migration (tests/privacy/test_discovery.py fails for one that does not).

COMMENT ON COLUMN app.users.id IS 'personal: user_id';
COMMENT ON COLUMN app.users.email_hash IS 'personal: email_hash';
COMMENT ON COLUMN app.users.email_encrypted IS 'personal: contact';
COMMENT ON COLUMN app.push_subscriptions.subscription_encrypted IS 'personal: contact';
COMMENT ON COLUMN app.push_subscriptions.endpoint_hash IS 'personal: contact';
COMMENT ON COLUMN app.push_subscriptions.user_agent IS 'personal: contact';

COMMENT ON COLUMN analytics.user_events.user_id IS 'personal: user_id';
COMMENT ON COLUMN analytics.user_events.anonymous_id IS 'personal: anonymous_id';
COMMENT ON COLUMN analytics.user_events.session_id IS 'personal: session_id';
COMMENT ON COLUMN analytics.identity_links.user_id IS 'personal: user_id';
COMMENT ON COLUMN analytics.identity_links.id IS 'personal: anonymous_id';
COMMENT ON COLUMN analytics.event_relinks.user_id IS 'personal: user_id';
COMMENT ON COLUMN analytics.daily_user_stats.user_id IS 'personal: user_id';
COMMENT ON COLUMN analytics.user_engagement_warehouse.user_id IS 'personal: user_id';
COMMENT ON COLUMN analytics.user_behavior_warehouse.user_id IS 'personal: user_id';
COMMENT ON COLUMN analytics.voting_patterns_warehouse.user_id IS 'personal: user_id';
COMMENT ON COLUMN analytics.ml_user_features.user_id IS 'personal: user_id';
COMMENT ON COLUMN analytics.ml_churn_predictions.user_id IS 'personal: user_id';
COMMENT ON COLUMN analytics.ml_engagement_forecasts.user_id IS 'personal: user_id';
COMMENT ON COLUMN analytics.user_recommendation_features.user_id IS 'personal: user_id';
COMMENT ON COLUMN analytics.ml_models.artifact IS 'personal: model_user_ids; erase: scrub';
-- who asked for an ETL run or cancelled one: the run stays, its requester goes
COMMENT ON COLUMN analytics.etl_runs.requested_by IS 'personal: user_id; erase: nullify';
COMMENT ON COLUMN analytics.etl_runs.cancelled_by IS 'personal: user_id; erase: nullify';
COMMENT ON COLUMN analytics.etl_audit.actor_id IS 'personal: user_id; erase: nullify';
COMMENT ON COLUMN analytics.etl_audit.actor_role IS 'personal: none';

COMMENT ON COLUMN notify.notification_delivery.user_id IS 'personal: user_id';
COMMENT ON COLUMN notify.notification_delivery.recipient IS 'personal: contact';
COMMENT ON COLUMN notify.email_templates.created_by IS 'personal: user_id; erase: nullify';
COMMENT ON COLUMN notify.send_requests.caller IS 'personal: user_id; erase: nullify';
-- the spec keeps a bounced or complained address suppressed after erasure (as its keyed hash)
COMMENT ON COLUMN notify.suppressions.address_hash IS 'personal: email_hash; erase: keep';

-- Erasure requests: durable (a worker that dies mid-way leaves the row `pending` and its job
-- is retried; every step is idempotent). Once done, the row keeps who asked, when and the
-- counts per table; the subject's id is blanked in the same transaction as the last delete.
CREATE SCHEMA IF NOT EXISTS privacy;
REVOKE ALL ON SCHEMA privacy FROM PUBLIC;

CREATE TABLE privacy.erasure_requests (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id       uuid,
  requested_by  uuid,
  requested_by_role text NOT NULL,
  source        text NOT NULL CHECK (source IN ('self', 'operator', 'cli')),
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
  requested_at  timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  attempts      integer NOT NULL DEFAULT 0,
  counts        jsonb NOT NULL DEFAULT '{}'::jsonb,
  redis_keys    integer NOT NULL DEFAULT 0,
  models        jsonb NOT NULL DEFAULT '{}'::jsonb,
  request_id    text,
  CHECK (status = 'done' OR user_id IS NOT NULL)
);
CREATE UNIQUE INDEX erasure_requests_one_pending ON privacy.erasure_requests (user_id)
  WHERE status = 'pending';
COMMENT ON COLUMN privacy.erasure_requests.user_id IS 'personal: user_id; erase: nullify';
COMMENT ON COLUMN privacy.erasure_requests.requested_by IS 'personal: user_id; erase: nullify';

ALTER TABLE privacy.erasure_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE privacy.erasure_requests FORCE ROW LEVEL SECURITY;
DO $$
BEGIN
  EXECUTE format(
    'CREATE POLICY "Owner role full access" ON privacy.erasure_requests FOR ALL TO %I'
    ' USING (true) WITH CHECK (true)', current_user);
END
$$;
