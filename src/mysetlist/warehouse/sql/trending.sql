-- Artist trending score for days lo..hi (see artist_popularity_warehouse in the migration):
--   recent_avg     = sum(activity, day-6 .. day) / 7
--   baseline_avg   = sum(activity, day-34 .. day-7) / 28
--   trending_score = (recent_avg + 1) / (baseline_avg + 1) - 1
-- An artist with activity in the last 7 days but none on the day itself gets a zero-count
-- row for that day, so "trending on day d" lists every artist active that week.
-- Params: lo, hi (dates).
DELETE FROM analytics.artist_popularity_warehouse
WHERE day BETWEEN %(lo)s AND %(hi)s
  AND artist_views = 0 AND show_views = 0 AND follows = 0 AND unfollows = 0 AND votes = 0;

INSERT INTO analytics.artist_popularity_warehouse AS t (
  artist_id, day, recent_avg, baseline_avg, trending_score)
SELECT artist_id, day, round(recent, 4), round(baseline, 4),
       round((recent + 1) / (baseline + 1) - 1, 4)
FROM (
  SELECT p.artist_id, d.day::date AS day,
         coalesce(sum(p.activity) FILTER (WHERE p.day > d.day::date - 7), 0) / 7.0 AS recent,
         coalesce(sum(p.activity) FILTER (WHERE p.day <= d.day::date - 7), 0) / 28.0 AS baseline
  FROM generate_series(%(lo)s::date, %(hi)s::date, interval '1 day') AS d(day)
  JOIN analytics.artist_popularity_warehouse p
    ON p.day BETWEEN d.day::date - 34 AND d.day::date
  GROUP BY p.artist_id, d.day
  HAVING sum(p.activity) FILTER (WHERE p.day > d.day::date - 7) > 0
) s
ON CONFLICT (artist_id, day) DO UPDATE SET
  recent_avg = EXCLUDED.recent_avg, baseline_avg = EXCLUDED.baseline_avg,
  trending_score = EXCLUDED.trending_score;
