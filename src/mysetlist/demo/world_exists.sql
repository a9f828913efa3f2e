-- Whether this database holds a demo world's record (built by build_world).
SELECT to_regclass('demo_truth.world') IS NOT NULL AS present
