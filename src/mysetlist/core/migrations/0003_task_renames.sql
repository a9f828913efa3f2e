-- Jobs waiting in the queue under the names used before the `<capability>.<task>` convention
-- (core/job_queue.py) move to the new names and queues, so no waiting job is failed as an
-- unknown task after the upgrade. procrastinate's tables exist only once it is installed
-- (after these migrations, on a new database).
DO $$
BEGIN
  IF to_regclass('public.procrastinate_jobs') IS NULL THEN
    RETURN;
  END IF;
  UPDATE public.procrastinate_jobs AS j
     SET task_name = r.new_name,
         queue_name = r.new_queue,
         queueing_lock = CASE WHEN r.periodic THEN r.new_name ELSE j.queueing_lock END,
         lock = NULL
    FROM (VALUES
      ('mysetlist.warehouse.etl_daily', 'warehouse.etl_daily', 'warehouse', true),
      ('mysetlist.warehouse.etl_incremental', 'warehouse.etl_incremental', 'warehouse', true),
      ('mysetlist.warehouse.etl_run', 'warehouse.etl_run', 'warehouse', false),
      ('tracking.hourly_rollup', 'tracking.hourly_rollup', 'tracking', true),
      ('tracking.partition_upkeep', 'tracking.partition_upkeep', 'tracking', true)
    ) AS r (old_name, new_name, new_queue, periodic)
   WHERE j.task_name = r.old_name AND j.status = 'todo';
END
$$;
