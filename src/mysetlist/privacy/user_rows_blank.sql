-- Erasure: blank columns (`blanks`: `column = NULL or a tombstone, ...`) on the rows that
-- `rows` selects: the user's rows a `nullify` finder matches, or another user's rows
-- carrying the user's id. The comment names no template field: it is formatted too.
UPDATE {table} SET {blanks} WHERE {rows}
