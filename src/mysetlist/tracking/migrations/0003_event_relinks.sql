-- Hours whose events got their user afterwards (an anonymous visitor or session that later
-- authenticated). Written in the same transaction as the rewrite of those events, so the
-- hourly rollup, which finds its work by the time events were received, also revisits
-- hours rewritten after it had summarised them. (The incremental ETL needs no such
-- list: the event that caused the link is new, so its user is in the run's scope.)
CREATE TABLE analytics.event_relinks (
  relinked_at  timestamptz NOT NULL DEFAULT now(),
  hour         timestamptz NOT NULL,  -- date_trunc('hour', created_at) in UTC
  user_id      uuid NOT NULL
);
CREATE INDEX idx_event_relinks_relinked_at ON analytics.event_relinks (relinked_at);
