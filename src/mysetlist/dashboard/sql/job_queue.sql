-- The job queue: jobs waiting or running per queue (procrastinate), and the runs of each
-- background task over the range (analytics.job_runs) with their failures and last error.
SELECT json_build_object(
  'queues', (SELECT coalesce(json_agg(q ORDER BY q.queue), '[]') FROM (
               SELECT queue_name AS queue,
                      count(*) FILTER (WHERE status = 'todo') AS waiting,
                      count(*) FILTER (WHERE status = 'todo' AND (scheduled_at IS NULL
                                       OR scheduled_at <= now())) AS due,
                      count(*) FILTER (WHERE status = 'doing') AS running,
                      count(*) FILTER (WHERE status = 'failed') AS failed
               FROM public.procrastinate_jobs
               WHERE status IN ('todo', 'doing', 'failed')
               GROUP BY queue_name) AS q),
  'tasks', (SELECT coalesce(json_agg(t ORDER BY t.failed DESC, t.task), '[]') FROM (
              SELECT task, count(*) AS runs,
                     count(*) FILTER (WHERE status = 'failed') AS failed,
                     count(*) FILTER (WHERE status = 'running') AS running,
                     round(percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)::numeric)
                       AS p50_ms,
                     max(started_at) AS last_started_at,
                     (array_agg(error ORDER BY started_at DESC)
                        FILTER (WHERE status = 'failed'))[1] AS last_error
              FROM analytics.job_runs
              WHERE started_at >= %(since)s
              GROUP BY task) AS t)
) AS data
