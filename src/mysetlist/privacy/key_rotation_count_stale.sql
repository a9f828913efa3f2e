-- How many values of one encrypted column are not under the newest key (by the 5 header
-- bytes: format byte and key id). Template fields: the table and the column.
SELECT count(*) AS n FROM {table}
WHERE {value} IS NOT NULL AND substring({value} FROM 1 FOR 5) <> %(header)s
