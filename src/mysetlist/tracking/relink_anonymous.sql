-- Give a newly linked anonymous id's earlier anonymous events their user.
UPDATE analytics.user_events e
SET user_id = l.user_id
FROM unnest(%(ids)s::text[], %(users)s::uuid[]) AS l(id, user_id)
WHERE e.anonymous_id = l.id AND e.user_id IS NULL
