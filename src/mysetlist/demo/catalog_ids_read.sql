SELECT table_name, first_id FROM demo_truth.catalog_ids
