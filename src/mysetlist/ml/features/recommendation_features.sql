-- user_recommendation_features as of %(day)s: per user and artist, a standing follow (by
-- follow/unfollow events up to day) and the views and votes of the 28 days up to day.
-- Only events created before day + 1 and votes cast before it are read. Idempotent.

DELETE FROM analytics.user_recommendation_features WHERE as_of = %(day)s;

INSERT INTO analytics.user_recommendation_features (
  as_of, user_id, artist_id, follows, artist_views_28, show_views_28, votes_28,
  last_interaction)
WITH bounds AS (
  SELECT (%(day)s::date - 27)::timestamp AT TIME ZONE 'UTC' AS window_start,
         (%(day)s::date + 1)::timestamp AT TIME ZONE 'UTC' AS cut_off
),
events AS (
  -- Two branches so each can use an index and prune partitions at plan time: follows and
  -- unfollows over all history (predicate as in idx_user_events_follows, tracking migration
  -- 0011), views of the 28-day window. The bounds repeat `bounds` as constants of %(day)s:
  -- from the CTE they would be known only at run time.
  SELECT e.user_id, e.event_type, e.created_at,
         CASE WHEN e.properties ->> 'artist_id' ~ '^[0-9]{1,18}$'
              THEN (e.properties ->> 'artist_id')::bigint END AS artist_id,
         NULL::bigint AS show_id
  FROM analytics.user_events e
  WHERE e.event_type IN ('follow', 'unfollow') AND e.user_id IS NOT NULL
    AND e.created_at < (%(day)s::date + 1)::timestamp AT TIME ZONE 'UTC'
  UNION ALL
  SELECT e.user_id, e.event_type, e.created_at,
         CASE WHEN e.properties ->> 'artist_id' ~ '^[0-9]{1,18}$'
              THEN (e.properties ->> 'artist_id')::bigint END,
         CASE WHEN e.properties ->> 'show_id' ~ '^[0-9]{1,18}$'
              THEN (e.properties ->> 'show_id')::bigint END
  FROM analytics.user_events e
  WHERE e.event_type IN ('artist_view', 'show_view') AND e.user_id IS NOT NULL
    AND e.created_at >= (%(day)s::date - 27)::timestamp AT TIME ZONE 'UTC'
    AND e.created_at < (%(day)s::date + 1)::timestamp AT TIME ZONE 'UTC'
),
interactions AS (
  SELECT ev.user_id, ev.event_type AS kind, ev.created_at,
         CASE WHEN ev.event_type = 'show_view' THEN sh.artist_id ELSE ev.artist_id END AS artist_id
  FROM events ev
  LEFT JOIN app.shows sh ON ev.event_type = 'show_view' AND sh.id = ev.show_id
  UNION ALL
  SELECT v.user_id, 'vote', v.created_at, s.artist_id
  FROM app.setlist_votes v
  JOIN app.shows s ON s.id = v.show_id, bounds b
  WHERE v.created_at >= b.window_start AND v.created_at < b.cut_off
)
SELECT %(day)s, i.user_id, i.artist_id,
       coalesce(sum(CASE i.kind WHEN 'follow' THEN 1 WHEN 'unfollow' THEN -1 END), 0) > 0,
       count(*) FILTER (WHERE i.kind = 'artist_view')::integer,
       count(*) FILTER (WHERE i.kind = 'show_view')::integer,
       count(*) FILTER (WHERE i.kind = 'vote')::integer,
       (max(i.created_at) FILTER (WHERE i.created_at >= b.window_start) AT TIME ZONE 'UTC')::date
FROM interactions i
JOIN app.artists a ON a.id = i.artist_id
CROSS JOIN bounds b
GROUP BY i.user_id, i.artist_id, b.window_start
HAVING coalesce(sum(CASE i.kind WHEN 'follow' THEN 1 WHEN 'unfollow' THEN -1 END), 0) > 0
    OR count(*) FILTER (WHERE i.created_at >= b.window_start AND i.kind <> 'unfollow') > 0;
