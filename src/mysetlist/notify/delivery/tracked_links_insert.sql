INSERT INTO notify.tracked_links (delivery_id, position, url)
SELECT * FROM unnest(%(delivery_ids)b::bigint[], %(positions)b::int[], %(urls)b::text[])
ON CONFLICT (delivery_id, position) DO UPDATE SET url = EXCLUDED.url
