-- The days the ETL recorded as loaded since %(since)s (freshness check).
SELECT day, loaded_at, partial FROM analytics.etl_loaded_days WHERE day >= %(since)s
