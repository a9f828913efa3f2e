-- The time of the current transaction (the rollup's "now" when none is given).
SELECT now()
