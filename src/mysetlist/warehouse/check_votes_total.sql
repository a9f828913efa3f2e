-- Every vote: the platform's, and voting_patterns_warehouse's by user, show and artist.
SELECT (SELECT count(*) FROM app.setlist_votes) AS app_votes,
       (SELECT coalesce(sum(votes), 0) FROM analytics.voting_patterns_warehouse
         WHERE grain = 'user') AS by_user,
       (SELECT coalesce(sum(votes), 0) FROM analytics.voting_patterns_warehouse
         WHERE grain = 'show') AS by_show,
       (SELECT coalesce(sum(votes), 0) FROM analytics.voting_patterns_warehouse
         WHERE grain = 'artist') AS by_artist
