-- Skip the per-row foreign-key triggers (pg_restore's --disable-triggers), this transaction.
SET LOCAL session_replication_role = replica
