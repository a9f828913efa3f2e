staged AS (
  -- A small flush without identity links as ONE autocommit statement (durable when it
  -- returns): one round trip instead of BEGIN, COPY, INSERT, COMMIT. The arrays go in
  -- binary format (the b placeholders): in text, psycopg escapes every element with a
  -- regex (JSON properties and URLs all need quoting), most of a small flush's client CPU.
  SELECT *
  FROM unnest(%(message_id)b::text[], %(user_id)b::uuid[], %(anonymous_id)b::text[],
              %(session_id)b::text[], %(event_type)b::text[], %(page_url)b::text[],
              %(properties)b::text[], %(source)b::text[], %(created_at)b::timestamptz[],
              %(claimed_user_id)b::uuid[], %(sender)b::bytea[], %(proves_anonymous)b::bool[],
              %(proves_session)b::bool[])
    AS s(message_id, user_id, anonymous_id, session_id, event_type, page_url, properties,
         source, created_at, claimed_user_id, sender, proves_anonymous, proves_session)
),
