"""API monitoring in Prometheus format (prometheus-client).

`observe_response` records latency and status per route template from the timing the core
request middleware takes anyway (two metric updates per request). The group-commit writer reports
its batch sizes, flush times and queue depth; ingest lag is the age of the newest committed
event in this process. With several uvicorn workers set `PROMETHEUS_MULTIPROC_DIR` (an empty
directory shared by the workers) and `/metrics` aggregates all of them; otherwise it shows
this process only. In multiprocess mode the lag gauge (computed at scrape time) is not
available; use `time() - mysetlist_ingest_newest_committed_timestamp_seconds` instead.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import Scope

_MULTIPROC = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

HTTP_LATENCY = Histogram(
    "mysetlist_http_request_duration_seconds",
    "HTTP request latency by route template and method",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
HTTP_RESPONSES = Counter(
    "mysetlist_http_responses_total",
    "HTTP responses by route and status",
    ["method", "route", "status"],
)
INGEST_EVENTS = Counter(
    "mysetlist_ingest_events_total", "Events committed by the group-commit writer", ["outcome"]
)
GROUP_COMMIT_BATCH_EVENTS = Histogram(
    "mysetlist_group_commit_batch_events",
    "Events per group-commit transaction",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
GROUP_COMMIT_BATCH_REQUESTS = Histogram(
    "mysetlist_group_commit_batch_requests",
    "Requests coalesced per group-commit transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
GROUP_COMMIT_SECONDS = Histogram(
    "mysetlist_group_commit_flush_seconds",
    "Duration of one group-commit transaction (COPY to COMMIT)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
QUEUE_DEPTH = Gauge(
    "mysetlist_group_commit_queue_events",
    "Events waiting for a group-commit transaction",
    multiprocess_mode="livesum",
)
NEWEST_COMMITTED = Gauge(
    "mysetlist_ingest_newest_committed_timestamp_seconds",
    "Unix time of the newest committed event (created_at) in this process",
    multiprocess_mode="max",
)
LAST_COMMIT = Gauge(
    "mysetlist_ingest_last_commit_timestamp_seconds",
    "Unix time of the last group-commit COMMIT in this process",
    multiprocess_mode="max",
)
LIVE_METRICS_UPDATES = Counter(
    "mysetlist_live_metrics_updates_total", "Live metric updates in Redis", ["outcome"]
)


class _IngestLag:
    """A gauge computed at scrape time: seconds since the newest committed event's time."""

    def __init__(self) -> None:
        self.newest: float | None = None

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "mysetlist_ingest_lag_seconds",
            "Age of the newest committed event (now - its created_at), this process",
        )
        if self.newest is not None:
            family.add_metric([], max(0.0, time.time() - self.newest))
        yield family


INGEST_LAG = _IngestLag()
if not _MULTIPROC:
    from prometheus_client import REGISTRY

    REGISTRY.register(INGEST_LAG)


def note_committed(newest_event_ts: float) -> None:
    now = time.time()
    LAST_COMMIT.set(now)
    newest_event_ts = min(newest_event_ts, now)  # a client clock in the future must not pin it
    if INGEST_LAG.newest is None or newest_event_ts > INGEST_LAG.newest:
        INGEST_LAG.newest = newest_event_ts
        NEWEST_COMMITTED.set(newest_event_ts)


def render_metrics() -> tuple[bytes, str]:
    if _MULTIPROC:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    # With `serve`'s worker child, its metrics too (core/worker_metrics.py).
    from mysetlist.core.worker_metrics import with_worker_metrics

    return with_worker_metrics(), CONTENT_TYPE_LATEST


def observe_response(scope: Scope, status: int, seconds: float) -> None:
    """Latency and status per route template (a `core.http_middleware` response observer).
    Unmatched paths are grouped as `<unmatched>` so scanners cannot blow up the labels."""
    template = getattr(scope.get("route"), "path", None) or "<unmatched>"
    method = scope.get("method", "GET")
    HTTP_LATENCY.labels(method, template).observe(seconds)
    HTTP_RESPONSES.labels(method, template, str(status)).inc()
