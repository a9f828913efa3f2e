-- True when the platform tables hold nothing but the previous demo world (the usual case
-- for a demo or benchmark database), so it can be emptied with TRUNCATE instead of DELETE.
SELECT NOT EXISTS (
         SELECT 1 FROM app.users u
         WHERE NOT EXISTS (SELECT 1 FROM demo_truth.user_profile p WHERE p.user_id = u.id))
   AND NOT EXISTS (
         SELECT 1 FROM app.artists t WHERE NOT EXISTS (
           SELECT 1 FROM demo_truth.catalog_ids c
           WHERE c.table_name = 'artists' AND t.id BETWEEN c.first_id AND c.last_id))
   AND NOT EXISTS (
         SELECT 1 FROM app.venues t WHERE NOT EXISTS (
           SELECT 1 FROM demo_truth.catalog_ids c
           WHERE c.table_name = 'venues' AND t.id BETWEEN c.first_id AND c.last_id))
   AND NOT EXISTS (
         SELECT 1 FROM app.shows t WHERE NOT EXISTS (
           SELECT 1 FROM demo_truth.catalog_ids c
           WHERE c.table_name = 'shows' AND t.id BETWEEN c.first_id AND c.last_id))
   AND NOT EXISTS (
         SELECT 1 FROM app.songs t WHERE NOT EXISTS (
           SELECT 1 FROM demo_truth.catalog_ids c
           WHERE c.table_name = 'songs' AND t.id BETWEEN c.first_id AND c.last_id))
