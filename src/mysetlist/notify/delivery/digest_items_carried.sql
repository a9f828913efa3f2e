UPDATE notify.digest_items SET digest_id = %(digest_id)s
WHERE user_id = %(user_id)s AND notification_id = ANY(%(ids)s::bigint[]) AND digest_id IS NULL
