-- One batch of notifications past retention (deliveries, tracked links and digest items
-- go with them by their cascading references).
DELETE FROM notify.notifications
WHERE id IN (
  SELECT id FROM notify.notifications
  WHERE created_at < now() - make_interval(days => %(days)s)
  ORDER BY id LIMIT %(batch)s
)
