-- Rows older than the cutoff that no dropped partition took with it: the default
-- partition's, and (monthly grain) the expired days of the month that straddles the cutoff.
-- Partition pruning keeps this to those partitions.
DELETE FROM {parent} WHERE {key} < %(cutoff)s
