-- ml_user_features as of %(day)s: the users with a daily_user_stats row in the 56 days up
-- to it, from warehouse days <= day only (nothing after the cut-off is read). Idempotent.
DELETE FROM analytics.ml_user_features WHERE as_of = %(day)s;

INSERT INTO analytics.ml_user_features (
  as_of, user_id, tenure_days, days_since_last_active, active_days_7, active_days_prev_7,
  active_days_28, active_days_56, events_7, events_prev_7, events_28, sessions_28,
  session_seconds_28, page_views_28, votes_28, follows_28, searches_28, engagement_7,
  engagement_prev_7, engagement_28, activity_trend, engagement_decline, activity_rate,
  missed_active_days, mean_gap_days, longest_gap_days, silence_ratio, sessions_3, sessions_7,
  sessions_56, session_rate, session_ratio_3, session_ratio_7, session_ratio_14,
  session_decline_14, hours_since_last_event, silence_log_probability)
SELECT %(day)s, w.user_id, w.tenure_days,
       %(day)s::date - w.last_day,
       w.active_days_7, w.active_days_prev_7, w.active_days_28, w.active_days_56,
       w.events_7, w.events_prev_7, w.events_28, w.sessions_28, w.session_seconds_28,
       w.page_views_28, w.votes_28, w.follows_28, w.searches_28,
       w.engagement_7 / 7, w.engagement_prev_7 / 7, w.engagement_28 / 28,
       (w.events_7 - w.events_prev_7)::float8 / (w.events_7 + w.events_prev_7 + 1),
       (w.engagement_prev_7 - w.engagement_7) / 7,
       w.active_days_56::float8 / least(56, w.tenure_days + 1),
       (%(day)s::date - w.last_day) * w.active_days_56::float8 / least(56, w.tenure_days + 1),
       CASE WHEN w.active_days_56 > 1
            THEN (w.last_day - w.first_day)::float8 / (w.active_days_56 - 1) ELSE 56 END,
       w.longest_gap_days,
       (%(day)s::date - w.last_day)::float8 / greatest(w.longest_gap_days, 1),
       w.sessions_3, w.sessions_7, w.sessions_56, r.session_rate,
       (w.sessions_3 + 0.5) / (r.session_rate * least(3, w.tenure_days + 1) + 0.5),
       (w.sessions_7 + 0.5) / (r.session_rate * least(7, w.tenure_days + 1) + 0.5),
       (w.sessions_14 + 0.5) / (r.session_rate * least(14, w.tenure_days + 1) + 0.5),
       -- slope of daily sessions against their age in days (0 = as_of) over 14 days
       -- (sum((age - 6.5)^2) = 227.5), over the rate: positive when sessions fall off
       w.session_moment_14 / 227.5 / greatest(r.session_rate, 1.0 / 56),
       w.hours_since_last_event,
       (0.5 + w.sessions_56)
         * ln((2 + least(56, w.tenure_days + 1))
              / (2 + least(56, w.tenure_days + 1) + w.hours_since_last_event / 24))
FROM (
  SELECT a.*,
         greatest(0, %(day)s::date
                     - coalesce((u.created_at AT TIME ZONE 'UTC')::date, a.first_day)) AS tenure_days
  FROM (
  SELECT s.user_id,
         min(s.day) AS first_day,
         max(s.day) AS last_day,
         -- the longest silence between two active days; 56 when there was only one
         coalesce(max(s.gap), 56)::integer AS longest_gap_days,
         count(*) FILTER (WHERE s.in_7)::integer AS active_days_7,
         count(*) FILTER (WHERE s.in_prev_7)::integer AS active_days_prev_7,
         count(*) FILTER (WHERE s.in_28)::integer AS active_days_28,
         count(*)::integer AS active_days_56,
         coalesce(sum(s.events) FILTER (WHERE s.in_7), 0)::integer AS events_7,
         coalesce(sum(s.events) FILTER (WHERE s.in_prev_7), 0)::integer AS events_prev_7,
         coalesce(sum(s.events) FILTER (WHERE s.in_28), 0)::integer AS events_28,
         coalesce(sum(s.sessions) FILTER (WHERE s.in_28), 0)::integer AS sessions_28,
         coalesce(sum(s.sessions) FILTER (WHERE s.in_3), 0)::integer
           AS sessions_3,
         coalesce(sum(s.sessions) FILTER (WHERE s.in_7), 0)::integer AS sessions_7,
         coalesce(sum(s.sessions) FILTER (WHERE s.in_14), 0)::integer
           AS sessions_14,
         coalesce(sum(s.sessions), 0)::integer AS sessions_56,
         -- age of a day (0 = as_of) minus the 14 days' mean age, times its sessions
         coalesce(sum(s.sessions * (%(day)s::date - s.day - 6.5))
                  FILTER (WHERE s.in_14), 0)::float8 AS session_moment_14,
         extract(epoch FROM (%(day)s::date + 1)::timestamp AT TIME ZONE 'UTC'
                 - max(coalesce(s.last_event_at,
                                (s.day + 1)::timestamp AT TIME ZONE 'UTC'))) / 3600
           AS hours_since_last_event,
         coalesce(sum(s.session_seconds) FILTER (WHERE s.in_28), 0)::bigint AS session_seconds_28,
         coalesce(sum(s.page_views) FILTER (WHERE s.in_28), 0)::integer AS page_views_28,
         coalesce(sum(s.votes) FILTER (WHERE s.in_28), 0)::integer AS votes_28,
         coalesce(sum(s.follows) FILTER (WHERE s.in_28), 0)::integer AS follows_28,
         coalesce(sum(s.searches) FILTER (WHERE s.in_28), 0)::integer AS searches_28,
         coalesce(sum(e.engagement_score) FILTER (WHERE s.in_7), 0)::float8 AS engagement_7,
         coalesce(sum(e.engagement_score) FILTER (WHERE s.in_prev_7), 0)::float8
           AS engagement_prev_7,
         coalesce(sum(e.engagement_score) FILTER (WHERE s.in_28), 0)::float8 AS engagement_28
  FROM (
    -- each window defined once: the last 3, 7 and 14 days, the 7 before the last 7, the
    -- last 28
    SELECT d.*, d.day - lag(d.day) OVER (PARTITION BY d.user_id ORDER BY d.day) AS gap,
           d.day > %(day)s::date - 3 AS in_3,
           d.day > %(day)s::date - 7 AS in_7,
           d.day > %(day)s::date - 14 AS in_14,
           d.day BETWEEN %(day)s::date - 13 AND %(day)s::date - 7 AS in_prev_7,
           d.day > %(day)s::date - 28 AS in_28
    FROM analytics.daily_user_stats d
    WHERE d.day BETWEEN %(day)s::date - 55 AND %(day)s::date
  ) s
  LEFT JOIN analytics.user_engagement_warehouse e ON e.user_id = s.user_id AND e.day = s.day
  GROUP BY s.user_id
  ) a
  LEFT JOIN app.users u ON u.id = a.user_id
) w
CROSS JOIN LATERAL (
  SELECT w.sessions_56::float8 / least(56, w.tenure_days + 1) AS session_rate
) r;
