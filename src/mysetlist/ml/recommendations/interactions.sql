-- The interaction matrix, the one definition training and serving both read: every user's
-- rows for training (%(user_id)s NULL), one user's row to serve them (%(user_id)s, read
-- under the caller's own role), so what a model is fitted on and what it is asked about
-- cannot drift apart. Per (user, artist) the summed confidence of follows, votes (one per
-- show voted on), artist and show page views and attendance, over the last
-- %(history_days)s days of events. Event properties are client-sent: ids are taken only
-- when they are whole numbers of an artist or show that exists.
WITH events AS (
  SELECT e.user_id, e.event_type, e.properties
  FROM analytics.user_events e
  WHERE e.user_id IS NOT NULL
    AND (%(user_id)s::uuid IS NULL OR e.user_id = %(user_id)s::uuid)
    AND e.created_at >= now() - make_interval(days => %(history_days)s)
    AND (e.event_type IN ('artist_view', 'show_view') OR e.event_type = ANY(%(attend_events)s))
), cells AS (
  SELECT f.user_id, f.artist_id, %(follow_weight)s::float8 AS w
  FROM app.follows f
  WHERE %(user_id)s::uuid IS NULL OR f.user_id = %(user_id)s::uuid
  UNION ALL
  SELECT v.user_id, s.artist_id, %(vote_weight)s * count(DISTINCT v.show_id)
  FROM app.setlist_votes v JOIN app.shows s ON s.id = v.show_id
  WHERE %(user_id)s::uuid IS NULL OR v.user_id = %(user_id)s::uuid
  GROUP BY v.user_id, s.artist_id
  UNION ALL
  SELECT e.user_id, a.id, %(view_weight)s * count(*)
  FROM events e JOIN app.artists a ON a.id = (e.properties->>'artist_id')::bigint
  WHERE e.event_type = 'artist_view' AND e.properties->>'artist_id' ~ '^[0-9]{1,18}$'
  GROUP BY e.user_id, a.id
  UNION ALL
  SELECT e.user_id, s.artist_id,
         CASE WHEN e.event_type = 'show_view' THEN %(view_weight)s ELSE %(attend_weight)s END
           * count(*)
  FROM events e JOIN app.shows s ON s.id = (e.properties->>'show_id')::bigint
  WHERE e.event_type <> 'artist_view' AND e.properties->>'show_id' ~ '^[0-9]{1,18}$'
  GROUP BY e.user_id, s.artist_id, e.event_type
)
SELECT c.user_id::text AS user_id, c.artist_id::text AS item_id, sum(c.w) AS weight
FROM cells c JOIN app.users u ON u.id = c.user_id AND u.deleted_at IS NULL
GROUP BY c.user_id, c.artist_id
HAVING sum(c.w) > 0
