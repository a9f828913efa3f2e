INSERT INTO notify.suppressions (address_hash, reason, source, detail)
SELECT * FROM unnest(%(hashes)b::bytea[], %(reasons)b::text[], %(sources)b::text[],
                     %(details)b::text[])
ON CONFLICT (address_hash) DO NOTHING
