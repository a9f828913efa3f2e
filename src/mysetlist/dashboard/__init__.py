"""The operator dashboard: `/dashboard` (server-rendered page, vendored ECharts, live panels
over SSE) and `GET /api/analytics/dashboard` (every panel's data as one JSON document)."""
