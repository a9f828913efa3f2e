-- The state query's settings, in its transaction only (core/state_metrics.py): a slow or
-- locked database gives up after the timeout (ms) instead of holding the scrape, and no
-- parallel workers (launching them costs more than the small scans they would split).
SELECT set_config('statement_timeout', %(timeout_ms)s, true),
       set_config('max_parallel_workers_per_gather', '0', true)
