-- The state /metrics reports from the database (core/state_metrics.py), as one row. It runs
-- on every scrape of every API process, so each part reads an index or a few rows:
-- etl_runs by its created_at index (stopping at the first match), the due-delivery and
-- todo-job partial indexes, the workers' heartbeat index, and the events received after
-- the ETL's watermark through the received_at BRIN index (recent block ranges only; the
-- scan grows with the backlog, which is what the ingest-lag alert is about).
-- Times are Unix seconds; an age is 0 when nothing waits.
SELECT
  -- ETL (warehouse): the last successful run, whether the last finished run failed, the
  -- failed checks of the last run that ran checks, how long the running run has run, the
  -- end of the last closed day a daily run loaded.
  (SELECT extract(epoch FROM r.finished_at)
     FROM analytics.etl_runs AS r WHERE r.status = 'succeeded'
    ORDER BY r.created_at DESC LIMIT 1) AS etl_last_success,
  coalesce((SELECT (r.status = 'failed')::int
              FROM analytics.etl_runs AS r WHERE r.status IN ('succeeded', 'failed')
             ORDER BY r.created_at DESC LIMIT 1), 0) AS etl_last_run_failed,
  coalesce((SELECT r.checks_failed
              FROM analytics.etl_runs AS r WHERE r.checks_status <> 'not_run'
             ORDER BY r.created_at DESC LIMIT 1), 0) AS etl_checks_failed,
  coalesce((SELECT extract(epoch FROM now() - r.started_at)
              FROM analytics.etl_runs AS r
             WHERE r.status = 'running' AND r.started_at IS NOT NULL
             ORDER BY r.created_at DESC LIMIT 1), 0) AS etl_running_seconds,
  (SELECT extract(epoch FROM ((w.last_full_day + 1)::timestamp AT TIME ZONE 'UTC'))
     FROM analytics.watermarks AS w
    WHERE w.name = 'warehouse.events' AND w.last_full_day IS NOT NULL) AS etl_loaded_through,
  -- Ingest to warehouse: the age of the oldest event received after the incremental
  -- watermark (within the incremental window: since the start of yesterday, UTC).
  coalesce((SELECT extract(epoch FROM now() - min(e.received_at))
              FROM analytics.user_events AS e
             WHERE e.created_at >= ((now() AT TIME ZONE 'UTC')::date - 1)::timestamp
                                   AT TIME ZONE 'UTC'
               AND e.received_at > coalesce(
                     (SELECT w.position FROM analytics.watermarks AS w
                       WHERE w.name = 'warehouse.events'), '-infinity')), 0)
    AS events_unloaded_age,
  -- Notification deliveries waiting (queued or deferred), those due now, and how long the
  -- oldest due one has been due.
  (SELECT count(*) FROM notify.notification_delivery AS d
    WHERE d.status IN ('queued', 'deferred')) AS notify_waiting,
  (SELECT count(*) FROM notify.notification_delivery AS d
    WHERE d.status IN ('queued', 'deferred') AND d.next_attempt_at <= now()) AS notify_due,
  coalesce((SELECT extract(epoch FROM now() - min(d.next_attempt_at))
              FROM notify.notification_delivery AS d
             WHERE d.status IN ('queued', 'deferred') AND d.next_attempt_at <= now()), 0)
    AS notify_oldest_due_age,
  -- Job queue (procrastinate): workers with a recent heartbeat (they beat every 10 s), jobs
  -- due and runnable (not waiting on a lock a running job holds), and how long the oldest
  -- of the first 100 such jobs has been due (scheduled time, or its deferral).
  (SELECT count(*) FROM public.procrastinate_workers AS pw
    WHERE pw.last_heartbeat > now() - interval '60 seconds') AS job_workers,
  (SELECT count(*) FROM public.procrastinate_jobs AS j
    WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
      AND NOT EXISTS (SELECT 1 FROM public.procrastinate_jobs AS held
                       WHERE held.status = 'doing' AND held.lock = j.lock)) AS jobs_due,
  coalesce((SELECT extract(epoch FROM now() - min(coalesce(j.scheduled_at, deferred.at)))
              FROM (SELECT t.id, t.scheduled_at FROM public.procrastinate_jobs AS t
                     WHERE t.status = 'todo' AND (t.scheduled_at IS NULL OR t.scheduled_at <= now())
                       AND NOT EXISTS (SELECT 1 FROM public.procrastinate_jobs AS held
                                        WHERE held.status = 'doing' AND held.lock = t.lock)
                     ORDER BY t.id LIMIT 100) AS j
              LEFT JOIN LATERAL (SELECT min(ev.at) AS at FROM public.procrastinate_events AS ev
                                  WHERE ev.job_id = j.id AND ev.type = 'deferred') AS deferred
                ON true), 0) AS jobs_oldest_due_age
