staged AS (
  -- A small flush without identity links as ONE autocommit statement (durable when it
  -- returns): one round trip instead of BEGIN, COPY, INSERT, COMMIT.
  SELECT *
  FROM unnest(%(message_id)s::text[], %(user_id)s::uuid[], %(anonymous_id)s::text[],
              %(session_id)s::text[], %(event_type)s::text[], %(page_url)s::text[],
              %(properties)s::text[], %(source)s::text[], %(created_at)s::timestamptz[],
              %(claimed_user_id)s::uuid[], %(sender)s::bytea[], %(proves_anonymous)s::bool[],
              %(proves_session)s::bool[])
    AS s(message_id, user_id, anonymous_id, session_id, event_type, page_url, properties,
         source, created_at, claimed_user_id, sender, proves_anonymous, proves_session)
),
