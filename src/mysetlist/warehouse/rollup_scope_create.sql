-- etl_scope(kind, id, user_id): the users whose entity-level rows this rollup recomputes
-- (filled by rollup_scope.sql or rollup_scope_incremental.sql).
CREATE TEMP TABLE etl_scope (kind text, id text, user_id uuid) ON COMMIT DROP
