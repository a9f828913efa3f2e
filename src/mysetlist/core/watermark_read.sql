SELECT name, position, last_full_day, run_id, updated_at
  FROM analytics.watermarks
 WHERE name = %(name)s
