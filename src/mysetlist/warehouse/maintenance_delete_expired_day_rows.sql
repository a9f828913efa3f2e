-- One batch of {table}'s rows older than the retention cutoff (short transactions, no long
-- locks: the caller repeats until a batch comes back short).
DELETE FROM {table}
 WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE day < %(cutoff)s LIMIT %(batch)s))
