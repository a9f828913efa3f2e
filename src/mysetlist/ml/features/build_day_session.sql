-- A feature build's day transaction runs without JIT, as the ETL's sessions do
-- (warehouse/work_session.sql): these are one-pass batch statements, and compiling them
-- costs more than it saves (recommendation_features.sql's INSERT crosses jit_above_cost,
-- and compiling its ~400 per-partition expressions cost ~0.3 s of a 1.5 s query;
-- docs/performance.md, 2026-12-04). Local to the transaction.
SELECT set_config('jit', 'off', true)
