-- The user's rows of one table, for the export; `users_rows` is the table's selection from
-- user_rows.py (one placeholder per finder: the user's values for it).
SELECT * FROM {table} WHERE {users_rows}
