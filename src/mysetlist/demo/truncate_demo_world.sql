-- Empty a database that holds only the demo world. CASCADE also empties tables that point
-- at its users or catalogue (rows derived from the world being replaced).
TRUNCATE app.users, app.artists, app.venues, app.shows, app.songs, app.setlist_songs,
  app.setlist_votes, app.follows, app.push_subscriptions CASCADE;
TRUNCATE demo_truth.world, demo_truth.catalog_ids, demo_truth.user_profile,
  demo_truth.user_taste, demo_truth.artist_profile, demo_truth.song_weight;
