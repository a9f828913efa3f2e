INSERT INTO notify.tracked_links (delivery_id, position, url)
SELECT * FROM unnest(%(delivery_ids)s::bigint[], %(positions)s::int[], %(urls)s::text[])
ON CONFLICT (delivery_id, position) DO UPDATE SET url = EXCLUDED.url
