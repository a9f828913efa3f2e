-- Write keys get a trust level (issue 7). A `server` key is a backend's secret: it may name
-- platform users and merge identities (Segment alias/identify, PostHog $identify and
-- $create_alias). A `browser` key sits in page source, so anyone has it: its user ids are
-- only claims, and it links nothing without a server-signed anonymous id as proof.
-- Keys created before trust levels existed become `browser`, the safe side: an operator
-- re-grants `server` with `mysetlist keys trust KEY server`.
ALTER TABLE analytics.write_keys
  ADD COLUMN trust text NOT NULL DEFAULT 'browser' CHECK (trust IN ('browser', 'server'));
