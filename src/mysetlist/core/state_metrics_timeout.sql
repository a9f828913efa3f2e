-- A scrape of /metrics gives up on the database after this long (ms), in this transaction
-- only: a slow or locked database must not hold the scrape (core/state_metrics.py).
SELECT set_config('statement_timeout', %(timeout_ms)s, true)
