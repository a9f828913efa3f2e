-- A release without schema changes: only the recorded version moves.
UPDATE public.job_queue_schema SET procrastinate_version = %(version)s
WHERE procrastinate_version <> %(version)s
