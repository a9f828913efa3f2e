-- A big flush's rows into the staging table, in binary (the column order of COPY_TYPES).
COPY pg_temp.ingest_staging_v2 (message_id, user_id, anonymous_id, session_id, event_type,
  page_url, properties, source, created_at, claimed_user_id, sender, proves_anonymous,
  proves_session) FROM STDIN (FORMAT BINARY)
