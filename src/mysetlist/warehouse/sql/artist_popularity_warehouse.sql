-- Per artist and day: views (artist pages, and show pages through the show's artist),
-- follows/unfollows (events), votes (app.setlist_votes), distinct fans, and
-- activity = artist_views + show_views + 2*votes + 5*follows. trending_score is filled by
-- the trending step (sql/trending.sql). Only artists that exist in app.artists. Params: day,
-- fresh (a first backfill: nothing to delete). After the delete the insert is plain.
DELETE FROM analytics.artist_popularity_warehouse WHERE NOT %(fresh)s AND day = %(day)s;

INSERT INTO analytics.artist_popularity_warehouse (
  artist_id, day, artist_views, show_views, unique_fans, follows, unfollows, votes, activity)
SELECT a.artist_id, %(day)s, a.artist_views, a.show_views, a.unique_fans, a.follows,
       a.unfollows, a.votes,
       a.artist_views + a.show_views + 2 * a.votes + 5 * a.follows
FROM (
  SELECT x.artist_id,
         count(*) FILTER (WHERE x.kind = 'artist_view')::integer AS artist_views,
         count(*) FILTER (WHERE x.kind = 'show_view')::integer AS show_views,
         count(*) FILTER (WHERE x.kind = 'follow')::integer AS follows,
         count(*) FILTER (WHERE x.kind = 'unfollow')::integer AS unfollows,
         count(*) FILTER (WHERE x.kind = 'vote')::integer AS votes,
         count(DISTINCT x.user_id)::integer AS unique_fans
  FROM (
    SELECT CASE WHEN s.event_type = 'show_view' THEN sh.artist_id ELSE s.artist_id END AS artist_id,
           s.event_type AS kind, s.user_id
    FROM etl_stage s
    LEFT JOIN app.shows sh ON s.event_type = 'show_view' AND sh.id = s.show_id
    WHERE s.event_type IN ('artist_view', 'show_view', 'follow', 'unfollow')
    UNION ALL
    SELECT artist_id, 'vote', user_id FROM etl_day_votes
  ) x
  JOIN app.artists ar ON ar.id = x.artist_id
  GROUP BY x.artist_id
) a;
