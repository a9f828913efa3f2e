INSERT INTO notify.suppressions (address_hash, reason, source, detail)
SELECT * FROM unnest(%(hashes)s::bytea[], %(reasons)s::text[], %(sources)s::text[],
                     %(details)s::text[])
ON CONFLICT (address_hash) DO NOTHING
