-- The users whose entity-level rows a full (daily or range) run recomputes: those active
-- in its days.
INSERT INTO etl_scope
SELECT DISTINCT 'user', user_id::text, user_id
  FROM analytics.daily_user_stats
 WHERE day BETWEEN %(lo)s AND %(hi)s
;
ANALYZE etl_scope;
