-- A table's deferred indexes are built again: forget them (in the building transaction).
DELETE FROM analytics.etl_deferred_indexes WHERE table_name = %(table_name)s
