-- One notification per recipient; a dedup key already used for a user inserts nothing.
INSERT INTO notify.notifications
  (user_id, request_id, type, category, title, message, data, template_name, variables,
   dedup_key)
SELECT r.user_id, %(request_id)s, %(type)s, %(category)s, %(title)s, %(message)s, %(data)s,
       %(template)s, %(variables)s, %(dedup_key)s
FROM unnest(%(user_ids)b::uuid[]) AS r(user_id)
ON CONFLICT (user_id, dedup_key) DO NOTHING
RETURNING id, user_id
