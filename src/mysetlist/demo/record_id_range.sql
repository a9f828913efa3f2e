-- The demo owns ids [first_id, last_id] of app.<table_name> (for the next replace).
INSERT INTO demo_truth.catalog_ids (table_name, first_id, last_id) VALUES (%s, %s, %s)
ON CONFLICT (table_name) DO UPDATE SET
  first_id = least(demo_truth.catalog_ids.first_id, excluded.first_id),
  last_id = greatest(demo_truth.catalog_ids.last_id, excluded.last_id)
