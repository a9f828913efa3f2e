-- One value re-encrypted, only if it still holds what was read (a concurrent write, made
-- under the newest key anyway, wins).
UPDATE {table} SET {value} = %(new)s WHERE {key} = %(key)s AND {value} = %(old)s
