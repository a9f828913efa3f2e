-- Days already run side by side: no parallel workers per query.
SET LOCAL max_parallel_workers_per_gather = 0
