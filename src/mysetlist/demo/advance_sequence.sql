-- Point a table's identity sequence past its highest id (qualified: its name as text).
SELECT setval(pg_get_serial_sequence({qualified}, 'id'),
              greatest((SELECT max(id) FROM {table}), 1),
              (SELECT max(id) IS NOT NULL FROM {table}))
