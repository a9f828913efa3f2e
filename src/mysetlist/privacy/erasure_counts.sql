-- The erasure's counts per table (never the erased identifiers).
UPDATE privacy.erasure_requests SET counts = %(counts)s::jsonb WHERE id = %(id)s
