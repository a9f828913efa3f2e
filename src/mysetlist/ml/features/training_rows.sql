-- The user features as of each cut-off in %(cut_offs)s, with what happened next (read only
-- for training and evaluation, never to score): active_after = any activity in the
-- %(horizon)s days after the cut-off; engagement_next_7 = the mean daily engagement
-- score over the 7 days after it.
SELECT f.*,
       EXISTS (SELECT 1 FROM analytics.daily_user_stats s
                WHERE s.user_id = f.user_id
                  AND s.day > f.as_of AND s.day <= f.as_of + %(horizon)s::integer) AS active_after,
       coalesce((SELECT sum(e.engagement_score) FROM analytics.user_engagement_warehouse e
                  WHERE e.user_id = f.user_id
                    AND e.day > f.as_of AND e.day <= f.as_of + 7), 0)::float8 / 7
         AS engagement_next_7
FROM analytics.ml_user_features f
WHERE f.as_of = ANY(%(cut_offs)s::date[])
ORDER BY f.as_of, f.user_id
