-- True when the platform tables hold nothing but the previous demo world (the usual case
-- for a demo or benchmark database), so it can be emptied with TRUNCATE instead of DELETE:
-- every user is a demo user and every catalogue row lies in an id range the demo allocated.
SELECT NOT EXISTS (
         SELECT 1 FROM app.users u
         WHERE NOT EXISTS (SELECT 1 FROM demo_truth.user_profile p WHERE p.user_id = u.id))
   AND NOT EXISTS (
         SELECT 1
         FROM (SELECT 'artists' AS table_name, id FROM app.artists
               UNION ALL SELECT 'venues', id FROM app.venues
               UNION ALL SELECT 'shows', id FROM app.shows
               UNION ALL SELECT 'songs', id FROM app.songs) t
         WHERE NOT EXISTS (
           SELECT 1 FROM demo_truth.catalog_ids c
           WHERE c.table_name = t.table_name AND t.id BETWEEN c.first_id AND c.last_id)) AS only_demo
