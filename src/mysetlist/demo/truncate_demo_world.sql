-- Empty a database that holds only the demo world. No CASCADE: a table outside this list
-- that references these (a later capability's rows about users or shows) makes TRUNCATE
-- fail, and the caller deletes exactly the world's rows instead, never emptying a table
-- it does not know.
TRUNCATE app.users, app.artists, app.venues, app.shows, app.songs, app.setlist_songs,
  app.setlist_votes, app.follows, app.push_subscriptions;
TRUNCATE demo_truth.world, demo_truth.catalog_ids, demo_truth.user_profile,
  demo_truth.user_taste, demo_truth.artist_profile, demo_truth.song_weight;
