-- Web push subscriptions are encrypted by notify/push with this context: rotated with the rest.
COMMENT ON COLUMN app.push_subscriptions.subscription_encrypted
  IS 'personal: contact; encrypted: push_subscriptions.subscription';
