-- Drop the (event_type, created_at) index (issue 18): every ingested event saved a B-tree
-- insert, -1.5 us/event of server CPU on a 20,000-event flush (docs/performance.md,
-- 2026-12-04). Per-type retention and anonymisation no longer need it: they read only the
-- range newly past their age since their last run (tracking/delete_expired_events_of_type.sql,
-- privacy/anonymise_events_of_type.sql). It also served the nightly ML features build
-- (ml/features/recommendation_features.sql: follow/unfollow events over all history), which
-- now reads every partition: 0.41 -> 0.81 s on 1.8M events; see docs/performance.md.
DROP INDEX analytics.idx_user_events_type_created;
