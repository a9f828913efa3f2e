INSERT INTO notify.digest_items (user_id, notification_id, frequency, period_start, due_at)
SELECT * FROM unnest(%(user_ids)s::uuid[], %(notification_ids)s::bigint[],
                     %(frequencies)s::text[], %(period_starts)s::date[],
                     %(due_ats)s::timestamptz[])
ON CONFLICT DO NOTHING
