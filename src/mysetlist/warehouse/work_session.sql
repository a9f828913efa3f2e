-- A work connection's settings for the whole session (ETL_CONFIG and tuning).
SELECT set_config('statement_timeout', %(timeout_ms)s, false),
       set_config('lock_timeout', %(lock_timeout_ms)s, false),
       set_config('work_mem', %(work_mem)s, false),
       -- a killed client's query stops within a second
       set_config('client_connection_check_interval', '1000', false),
       set_config('jit', 'off', false),
       -- the staging table is scanned by every day step: keep it in memory (must be set
       -- before the session's first temp table)
       set_config('temp_buffers', '256MB', false),
       -- a lost commit after a crash only means the day is reloaded: each day's rows and
       -- its etl_loaded_days entry commit (or vanish) together
       set_config('synchronous_commit', 'off', false)
