-- The run log's retention: rows of runs started before the cutoff (a run still marked
-- `running` that long ago died with its process).
DELETE FROM analytics.job_runs WHERE started_at < %(cutoff)s
