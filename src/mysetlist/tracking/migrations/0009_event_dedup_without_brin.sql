-- Drop the BRIN on event_dedup.received_at (issue 18): maintaining it cost every ingested
-- event ~0.8 us of server CPU (a 20,000-event COPY flush, three alternating rounds: 11.9 /
-- 11.3 / 12.6 -> 10.8 / 10.6 / 11.8 us/event), and it read little for the one query it
-- served: the daily purge of ids past the dedup window. After the first purges, vacuum's
-- freed pages take new rows among old ones, so block ranges come to span much of the window.
-- The purge (purge_event_dedup.sql) now reads the table once a day: window-days of ids.
DROP INDEX analytics.idx_event_dedup_received_brin;
