DELETE FROM analytics.etl_loaded_days WHERE day < %(cutoff)s
