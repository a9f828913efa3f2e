-- Whether this database holds a demo world's ground truth (`mysetlist demo` builds one).
SELECT to_regclass('demo_truth.user_profile') IS NOT NULL AS present
