-- Erasure: the user's rows of one table that a `delete` finder matches.
DELETE FROM {table} WHERE {users_rows}
