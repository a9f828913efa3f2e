-- Whether a cached predicted setlist may still be served to this caller. Run under the
-- caller's role, so row-level security decides whether they see the cached prediction row;
-- and the show must still start when, have the status and be upcoming or not as the cached
-- answer says (a show moved, cancelled or started is read afresh). One row, or none.
SELECT 1 AS current
FROM analytics.setlist_predictions p JOIN app.shows s ON s.id = p.show_id
WHERE p.id = %(prediction_id)s AND p.show_id = %(show_id)s
  AND s.starts_at = %(starts_at)s::timestamptz AND s.status::text = %(status)s
  AND (s.status = 'scheduled' AND s.starts_at > now()) = %(upcoming)s
