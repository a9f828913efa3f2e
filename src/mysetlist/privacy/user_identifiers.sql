-- Everything that identifies one user in our data: the anonymous and session ids linked to
-- the user or seen on the user's events, and the email lookup hash and ciphertext.
SELECT
  ARRAY(
    SELECT id FROM analytics.identity_links WHERE user_id = %(user_id)s
    UNION SELECT anonymous_id FROM analytics.user_events
          WHERE user_id = %(user_id)s AND anonymous_id IS NOT NULL
    UNION SELECT session_id FROM analytics.user_events
          WHERE user_id = %(user_id)s AND session_id IS NOT NULL
  ) AS linked_ids,
  (SELECT email_hash FROM app.users WHERE id = %(user_id)s) AS email_hash,
  (SELECT email_encrypted FROM app.users WHERE id = %(user_id)s) AS email_encrypted
