-- A first backfill drops an index it recorded; {index} is filled with its name.
DROP INDEX {index}
