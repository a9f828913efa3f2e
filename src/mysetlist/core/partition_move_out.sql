-- Rows of the new partition's range parked in the default partition are taken out first:
-- PostgreSQL refuses to create a partition whose range the default partition still holds.
CREATE TEMP TABLE _partition_rows ON COMMIT DROP AS
WITH moved AS (
  DELETE FROM {default_partition} WHERE {key} >= %(lo)s AND {key} < %(hi)s RETURNING *
)
SELECT * FROM moved
