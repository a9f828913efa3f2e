-- {view} is one of steps.MATERIALIZED_VIEWS (it has a unique index, so CONCURRENTLY works).
REFRESH MATERIALIZED VIEW CONCURRENTLY {view}
