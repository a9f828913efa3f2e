-- How far this standby's replay is behind the primary, in seconds: 0 when it has replayed
-- all it received (an idle primary sends nothing, so the last replay time would grow),
-- NULL when it has replayed nothing yet since it started; 0 on a server not in recovery.
SELECT CASE
         WHEN NOT pg_is_in_recovery() THEN 0
         WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
         ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())
       END AS lag_seconds
