-- The procrastinate version and last migration its tables were installed with.
INSERT INTO public.job_queue_schema (procrastinate_version, last_migration)
VALUES (%(version)s, %(last_migration)s)
