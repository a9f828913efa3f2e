-- The weekly signup cohorts' retention triangle (the warehouse's materialized view): the
-- twelve latest cohorts, each with its share of users active in week 0, 1, 2, ...
SELECT coalesce(json_agg(json_build_object(
         'cohort_week', cohort_week, 'cohort_size', cohort_size, 'weeks', weeks)
         ORDER BY cohort_week), '[]') AS data
FROM (
  SELECT cohort_week, max(cohort_size) AS cohort_size,
         json_agg(json_build_object('week', week_number, 'active_users', active_users,
                                    'retention', retention_rate) ORDER BY week_number) AS weeks
  FROM analytics.cohort_retention_weekly
  WHERE cohort_week >= (SELECT max(cohort_week) - 7 * 11 FROM analytics.cohort_retention_weekly)
  GROUP BY cohort_week
) AS c
