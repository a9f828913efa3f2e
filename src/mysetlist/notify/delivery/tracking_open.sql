-- A counter only: a GET never moves the status machine (scanners and proxies prefetch).
UPDATE notify.notification_delivery
SET open_count = open_count + 1, opened_at = coalesce(opened_at, now())
WHERE id = %(delivery_id)s
