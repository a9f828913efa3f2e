-- Whether procrastinate's tables exist, and the version and migration recorded at install
-- (no row: installed before versions were recorded).
SELECT to_regclass('public.procrastinate_jobs') IS NOT NULL AS installed,
       (SELECT procrastinate_version FROM public.job_queue_schema) AS procrastinate_version,
       (SELECT last_migration FROM public.job_queue_schema) AS last_migration
