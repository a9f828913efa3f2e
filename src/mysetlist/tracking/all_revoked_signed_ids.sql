-- Every revoked signed id (SHA-256 of the stable id), for ingest's in-memory set.
SELECT id_sha256 FROM analytics.revoked_signed_ids
