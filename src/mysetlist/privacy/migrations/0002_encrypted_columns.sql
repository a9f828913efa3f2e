-- Encrypted columns name their AES-GCM context: `encrypted: <context>` (read by
-- mysetlist.privacy.key_rotation, which re-encrypts them under the newest key).
COMMENT ON COLUMN app.users.email_encrypted IS 'personal: contact; encrypted: users.email';
