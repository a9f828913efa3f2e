-- Incremental runs: the users with new events or votes (etl_day_scope); show and artist
-- accuracy is left to the daily run (recomputing a popular show's votes every few
-- minutes is not worth it).
INSERT INTO etl_scope SELECT 'user', user_id::text, user_id FROM etl_day_scope;
ANALYZE etl_scope;
