-- Per show and day: page views and viewers (show_view events), votes and voters
-- (app.setlist_votes), shares (share events carrying show_id);
-- engagement = views + 2*votes + 3*shares. Only shows that exist in app.shows. Params: day,
-- fresh (a first backfill: nothing to delete). After the delete the insert is plain.
DELETE FROM analytics.show_engagement_warehouse WHERE NOT %(fresh)s AND day = %(day)s;

INSERT INTO analytics.show_engagement_warehouse (
  show_id, day, artist_id, views, unique_viewers, votes, unique_voters, shares, engagement)
SELECT x.show_id, %(day)s, sh.artist_id,
       count(*) FILTER (WHERE x.kind = 'show_view')::integer,
       count(DISTINCT x.user_id) FILTER (WHERE x.kind = 'show_view')::integer,
       count(*) FILTER (WHERE x.kind = 'vote')::integer,
       count(DISTINCT x.user_id) FILTER (WHERE x.kind = 'vote')::integer,
       count(*) FILTER (WHERE x.kind = 'share')::integer,
       (count(*) FILTER (WHERE x.kind = 'show_view')
        + 2 * count(*) FILTER (WHERE x.kind = 'vote')
        + 3 * count(*) FILTER (WHERE x.kind = 'share'))::integer
FROM (
  SELECT show_id, event_type AS kind, user_id
  FROM etl_stage
  WHERE show_id IS NOT NULL AND event_type IN ('show_view', 'share')
  UNION ALL
  SELECT show_id, 'vote', user_id FROM etl_day_votes
) x
JOIN app.shows sh ON sh.id = x.show_id
GROUP BY x.show_id, sh.artist_id;
