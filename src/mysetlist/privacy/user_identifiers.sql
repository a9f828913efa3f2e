-- Everything that identifies one user in our data: the anonymous and session ids PROVEN to
-- be the user's (identity links are made only with proof of possession: a valid signed
-- token carried with the user's JWT, or a server write key), and the email lookup hash and
-- ciphertext. Ids that merely appear on the user's events are not here: anyone can put
-- anyone's id on their own event, and it would hand them the other person's history.
SELECT
  ARRAY(SELECT id FROM analytics.identity_links WHERE user_id = %(user_id)s ORDER BY id)
    AS linked_ids,
  (SELECT email_hash FROM app.users WHERE id = %(user_id)s) AS email_hash,
  (SELECT email_encrypted FROM app.users WHERE id = %(user_id)s) AS email_encrypted
