-- The name is quoted as an identifier by the caller (psycopg.sql).
CREATE DATABASE {name}
