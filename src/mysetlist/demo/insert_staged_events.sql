-- Expand the staged batch into the target table (analytics.user_events, or the bulk-load
-- twin demo_truth.event_load): event type names, page URLs and JSON properties are built
-- here, set-based, instead of per event in Python. The target is filled in by psycopg.sql.
-- Parameters: event type names, site page paths, share channels, campaign names and
-- campaign channels (text[] each, 1-based like the staged indexes).
WITH staged AS (
  SELECT s.*,
         (%(event_types)s::text[])[s.kind] AS event_type,
         'https://mysetlist.app' AS origin
  FROM demo_event_stage s
)
INSERT INTO {target}
  (user_id, anonymous_id, session_id, event_type, page_url, properties, source, created_at)
SELECT
  s.user_id,
  -- Visitor ids as unguessable as production's (signed_ids.py: prefix + 128 bits, base64url):
  -- a keyed hash of the user and of the session under the world's secret.
  'anon_' || rtrim(translate(encode(substr(
    sha256(%(id_secret)s::bytea || convert_to('anonymous:' || s.user_id::text, 'UTF8')),
    1, 16), 'base64'), '+/', '-_'), '='),
  'sess_' || rtrim(translate(encode(substr(
    sha256(%(id_secret)s::bytea || convert_to('session:' || s.session_no::text, 'UTF8')),
    1, 16), 'base64'), '+/', '-_'), '='),
  s.event_type,
  CASE s.event_type
    WHEN 'page_view' THEN s.origin || (%(pages)s::text[])[s.ref_id]
    WHEN 'artist_view' THEN s.origin || '/artists/' || s.ref_id
    WHEN 'follow' THEN s.origin || '/artists/' || s.ref_id
    WHEN 'unfollow' THEN s.origin || '/artists/' || s.ref_id
    WHEN 'show_view' THEN s.origin || '/shows/' || s.ref_id
    WHEN 'vote' THEN s.origin || '/shows/' || s.ref_id
    WHEN 'share' THEN s.origin || '/shows/' || s.ref_id
    WHEN 'search' THEN s.origin || '/search'
    ELSE NULL
  END,
  CASE s.event_type
    WHEN 'page_view' THEN jsonb_build_object('path', (%(pages)s::text[])[s.ref_id])
    WHEN 'artist_view' THEN jsonb_build_object('artist_id', s.ref_id)
    WHEN 'follow' THEN jsonb_build_object('artist_id', s.ref_id)
    WHEN 'unfollow' THEN jsonb_build_object('artist_id', s.ref_id)
    WHEN 'show_view' THEN jsonb_build_object('show_id', s.ref_id)
    WHEN 'vote' THEN jsonb_build_object('show_id', s.ref_id, 'song_id', s.extra_id)
    WHEN 'share' THEN jsonb_build_object(
      'show_id', s.ref_id, 'channel', (%(share_channels)s::text[])[s.extra_id])
    WHEN 'search' THEN jsonb_build_object(
      'query', lower(left(a.name, s.extra_id::integer)), 'selected_artist_id', s.ref_id)
    ELSE jsonb_build_object(
      'campaign', (%(campaigns)s::text[])[s.ref_id],
      'channel', (%(campaign_channels)s::text[])[s.ref_id])
  END,
  'demo',
  s.created_at
FROM staged s
LEFT JOIN app.artists a ON s.event_type = 'search' AND a.id = s.ref_id
