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

-- One pass: per artist a dense calendar lo-34 .. hi (a day without a row is 0), and the
-- two sums as window frames over it, instead of joining every day of the range to the 35
-- days of rows before it (that join grew with days × window × artists). Only artists with
-- activity in lo-6 .. hi can be trending on a day of the range.
INSERT INTO analytics.artist_popularity_warehouse AS t (
  artist_id, day, recent_avg, baseline_avg, trending_score)
SELECT artist_id, day, round(recent, 4), round(baseline, 4),
       round((recent + 1) / (baseline + 1) - 1, 4)
FROM (
  SELECT artist_id, day, recent_sum,
         coalesce(recent_sum, 0) / 7.0 AS recent, coalesce(baseline_sum, 0) / 28.0 AS baseline
  FROM (
    SELECT c.artist_id, c.day,
           sum(p.activity) OVER (PARTITION BY c.artist_id ORDER BY c.day
                                 ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS recent_sum,
           sum(p.activity) OVER (PARTITION BY c.artist_id ORDER BY c.day
                                 ROWS BETWEEN 34 PRECEDING AND 7 PRECEDING) AS baseline_sum
    FROM (
      SELECT a.artist_id, d.day::date AS day
      FROM (SELECT DISTINCT artist_id FROM analytics.artist_popularity_warehouse
             WHERE day BETWEEN %(lo)s::date - 6 AND %(hi)s AND activity > 0) a
      CROSS JOIN generate_series(%(lo)s::date - 34, %(hi)s::date, interval '1 day') AS d(day)
    ) c
    LEFT JOIN analytics.artist_popularity_warehouse p
      ON p.artist_id = c.artist_id AND p.day = c.day
  ) w
  WHERE day >= %(lo)s
) s
WHERE recent_sum > 0
ON CONFLICT (artist_id, day) DO UPDATE SET
  recent_avg = EXCLUDED.recent_avg, baseline_avg = EXCLUDED.baseline_avg,
  trending_score = EXCLUDED.trending_score;
