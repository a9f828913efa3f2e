WITH counted AS (
  UPDATE notify.notification_delivery
  SET click_count = click_count + 1, clicked_at = coalesce(clicked_at, now())
  WHERE id = %(delivery_id)s
    AND EXISTS (SELECT 1 FROM notify.tracked_links
                WHERE delivery_id = %(delivery_id)s AND position = %(position)s)
)
SELECT url FROM notify.tracked_links WHERE delivery_id = %(delivery_id)s AND position = %(position)s
