-- ml_artist_features as of %(day)s: artists with warehouse activity in the 28 days up to
-- it, from artist_popularity_warehouse days <= day only. Idempotent.
DELETE FROM analytics.ml_artist_features WHERE as_of = %(day)s;

INSERT INTO analytics.ml_artist_features (
  as_of, artist_id, net_followers, activity_7, activity_28, views_28, votes_28, follows_28,
  fan_days_28, trending_score)
SELECT %(day)s, p.artist_id,
       sum(p.follows - p.unfollows)::integer,
       coalesce(sum(p.activity) FILTER (WHERE p.day > %(day)s::date - 7), 0)::integer,
       coalesce(sum(p.activity) FILTER (WHERE p.day > %(day)s::date - 28), 0)::integer,
       coalesce(sum(p.artist_views + p.show_views) FILTER (WHERE p.day > %(day)s::date - 28),
                0)::integer,
       coalesce(sum(p.votes) FILTER (WHERE p.day > %(day)s::date - 28), 0)::integer,
       coalesce(sum(p.follows) FILTER (WHERE p.day > %(day)s::date - 28), 0)::integer,
       coalesce(sum(p.unique_fans) FILTER (WHERE p.day > %(day)s::date - 28), 0)::integer,
       (array_agg(p.trending_score ORDER BY p.day DESC)
          FILTER (WHERE p.trending_score IS NOT NULL))[1]::float8
FROM analytics.artist_popularity_warehouse p
WHERE p.day <= %(day)s
GROUP BY p.artist_id
HAVING count(*) FILTER (WHERE p.day > %(day)s::date - 28) > 0;
