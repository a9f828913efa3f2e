-- The days a run resolved to load, and the snapshot it loads them as of.
UPDATE analytics.etl_runs
   SET from_day = %(from_day)s, to_day = %(to_day)s, days_total = %(days_total)s,
       snapshot_received_at = %(snapshot)s
 WHERE id = %(run_id)s
