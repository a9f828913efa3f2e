DELETE FROM analytics.watermarks WHERE name = %s
