-- The demo world's planted churners and when their activity stops (demo_truth exists only
-- in a database `mysetlist demo` built a world in).
SELECT user_id::text AS user_id, churn_at FROM demo_truth.user_profile WHERE churns
