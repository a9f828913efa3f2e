INSERT INTO notify.digest_items (user_id, notification_id, frequency, period_start, due_at)
SELECT * FROM unnest(%(user_ids)b::uuid[], %(notification_ids)b::bigint[],
                     %(frequencies)b::text[], %(period_starts)b::date[],
                     %(due_ats)b::timestamptz[])
ON CONFLICT DO NOTHING
