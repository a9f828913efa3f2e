DELETE FROM notify.notifications WHERE id = ANY(%(ids)s::bigint[])
