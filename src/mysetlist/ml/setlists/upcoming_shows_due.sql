-- Scheduled shows starting within the horizon whose latest model prediction is missing,
-- older than `stale_after`, or made before the artist's latest played show.
SELECT s.id
FROM app.shows s
WHERE s.status = 'scheduled'
  AND s.starts_at > now() AND s.starts_at <= now() + %(horizon)s
  AND NOT EXISTS (
    SELECT 1 FROM analytics.setlist_predictions p
    WHERE p.show_id = s.id AND p.kind = 'model' AND p.made_at > now() - %(stale_after)s
      AND p.made_at > coalesce((SELECT max(ss_show.starts_at) FROM app.shows ss_show
                                WHERE ss_show.artist_id = s.artist_id
                                  AND ss_show.status = 'completed'), '-infinity'))
ORDER BY s.starts_at
LIMIT %(limit)s
