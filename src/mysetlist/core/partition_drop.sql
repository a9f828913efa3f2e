-- A partition found by partition_list.sql, wholly past retention.
DROP TABLE {partition}
