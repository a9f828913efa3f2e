-- Incremental runs reload only these users' per-user rows (see sql/extract.sql); one per
-- work connection, filled by day_scope.sql.
CREATE TEMP TABLE etl_day_scope (user_id uuid PRIMARY KEY)
