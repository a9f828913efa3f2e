-- The rows of one materialized view, for the run's counts; {view} is filled with its name.
SELECT count(*) AS n FROM {view}
