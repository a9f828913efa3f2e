-- Whether every event is a demo event (then the table may be truncated).
SELECT NOT EXISTS (SELECT 1 FROM analytics.user_events WHERE source <> 'demo') AS only_demo
