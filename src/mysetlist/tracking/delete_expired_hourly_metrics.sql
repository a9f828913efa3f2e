-- Auto-cleanup of the hourly rollup: hours past its retention.
DELETE FROM analytics.hourly_real_time_metrics WHERE hour < %(oldest)s
