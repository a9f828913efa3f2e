-- Rebuild one bloated index without blocking writers; {index} is filled with its name.
REINDEX INDEX CONCURRENTLY {index}
