-- How long this transaction's statements wait for a lock before failing (e.g. '5s').
SELECT set_config('lock_timeout', %s, true)
