-- The constraint again, on the index just built for it (no second build); {kind} is
-- PRIMARY KEY or UNIQUE.
ALTER TABLE {table} ADD CONSTRAINT {constraint} {kind} USING INDEX {index}
