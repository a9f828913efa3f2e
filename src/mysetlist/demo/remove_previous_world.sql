-- Delete the previously built demo world, and only it: the users it created (their votes,
-- follows and push subscriptions go with them by cascade) and the catalogue id ranges it
-- allocated. Events are handled separately (remove_demo_events). Rows it did not create stay.
DELETE FROM app.users u USING demo_truth.user_profile p WHERE u.id = p.user_id;
DELETE FROM app.shows t USING demo_truth.catalog_ids c
  WHERE c.table_name = 'shows' AND t.id BETWEEN c.first_id AND c.last_id;
DELETE FROM app.songs t USING demo_truth.catalog_ids c
  WHERE c.table_name = 'songs' AND t.id BETWEEN c.first_id AND c.last_id;
DELETE FROM app.artists t USING demo_truth.catalog_ids c
  WHERE c.table_name = 'artists' AND t.id BETWEEN c.first_id AND c.last_id;
DELETE FROM app.venues t USING demo_truth.catalog_ids c
  WHERE c.table_name = 'venues' AND t.id BETWEEN c.first_id AND c.last_id;
TRUNCATE demo_truth.world, demo_truth.catalog_ids, demo_truth.user_profile,
  demo_truth.user_taste, demo_truth.artist_profile, demo_truth.song_weight;
