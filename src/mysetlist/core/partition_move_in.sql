INSERT INTO {parent} SELECT * FROM _partition_rows
