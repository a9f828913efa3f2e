-- WAU, MAU and stickiness (DAU / MAU) for daily_platform_metrics days lo..hi.
-- A user is in WAU(d) when active (a daily_user_stats row) on some day in d-6..d, in
-- MAU(d) for d-29..d. Computed in one pass: each active day covers [day, day+W-1]; the
-- part not already covered by the user's previous active day starts at
-- greatest(day, prev_day+W), so per user the covered spans are disjoint and a running
-- sum of +1/-1 over the calendar counts distinct users. Params: lo, hi (dates).
WITH act AS (
  SELECT day, lag(day) OVER (PARTITION BY user_id ORDER BY day) AS prev
  FROM analytics.daily_user_stats
  WHERE day BETWEEN %(lo)s::date - 29 AND %(hi)s::date
),
deltas AS (
  SELECT greatest(day, prev + 7) AS at, 1 AS dw, 0 AS dm FROM act
  UNION ALL SELECT day + 7, -1, 0 FROM act
  UNION ALL SELECT greatest(day, prev + 30), 0, 1 FROM act
  UNION ALL SELECT day + 30, 0, -1 FROM act
  UNION ALL SELECT d::date, 0, 0 FROM generate_series(%(lo)s::date, %(hi)s::date, interval '1 day') AS d
),
per_day AS (
  SELECT at, sum(dw) AS dw, sum(dm) AS dm FROM deltas GROUP BY at
),
running AS (
  SELECT at AS day, sum(dw) OVER (ORDER BY at) AS wau, sum(dm) OVER (ORDER BY at) AS mau
  FROM per_day
)
UPDATE analytics.daily_platform_metrics m
SET wau = r.wau, mau = r.mau,
    stickiness = CASE WHEN r.mau > 0 THEN round(m.active_users::numeric / r.mau, 4) END
FROM running r
WHERE m.day = r.day AND m.day BETWEEN %(lo)s AND %(hi)s;
