-- Claim an event's keys; fewer rows back than keys = already applied (a retry or a
-- replay). Nothing is written when any key is known, so a replay leaves no trace.
INSERT INTO notify.webhook_events (source, event_key)
SELECT %(source)s, k FROM unnest(%(event_keys)s::text[]) AS k
WHERE NOT EXISTS (SELECT 1 FROM notify.webhook_events
                  WHERE source = %(source)s AND event_key = ANY (%(event_keys)s::text[]))
ON CONFLICT (source, event_key) DO NOTHING
RETURNING event_key
