-- The rows partition_move_out.sql set aside, once moved in.
DROP TABLE _partition_rows
