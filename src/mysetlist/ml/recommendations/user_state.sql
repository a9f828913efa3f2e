-- Whether the user exists (not erased), and the artists they follow (never recommended).
SELECT u.id,
       coalesce((SELECT array_agg(f.artist_id) FROM app.follows f WHERE f.user_id = u.id),
                '{}') AS followed
FROM app.users u WHERE u.id = %(user_id)s AND u.deleted_at IS NULL
