"""State kept in the database, as Prometheus gauges on `/metrics` (the alert rules in
`deploy/prometheus/alerts.yml` read them): the ETL's last success, last failure, failed
checks, running time and loaded days; how long events wait to reach the warehouse; the
notification deliveries waiting and the oldest due one; live job workers and due jobs.

A scrape reads them with one query (`state_metrics.sql`) on a connection of its own, not
the pool's: a pool that streams or a burst hold must not make the scrape wait, and the
answer says whether the database itself answers. A short connect and statement timeout
bound it. When the database does not answer, `mysetlist_state_metrics_up` is 0 and the
other state gauges are absent; `/metrics` still answers 200 with every process metric.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mysetlist.core.db import Row, connect, read_sql

log = logging.getLogger(__name__)

_PACKAGE = "mysetlist.core"
TIMEOUT_SECONDS = 2.0
PREFIX = "mysetlist_state_"

# Column of state_metrics.sql -> (metric name, help). Every column is one gauge.
GAUGES: dict[str, tuple[str, str]] = {
    "etl_last_success": (
        "etl_last_success_timestamp_seconds",
        "Unix time the last successful ETL run finished",
    ),
    "etl_last_run_failed": (
        "etl_last_run_failed",
        "1 when the last finished ETL run failed, else 0",
    ),
    "etl_checks_failed": (
        "etl_checks_failed",
        "Failed data-quality checks of the last ETL run that ran checks",
    ),
    "etl_running_seconds": (
        "etl_running_seconds",
        "How long the running ETL run has been running (0: none runs)",
    ),
    "etl_loaded_through": (
        "etl_loaded_through_timestamp_seconds",
        "Unix time of the end of the last closed day a daily ETL run loaded",
    ),
    "events_unloaded_age": (
        "events_unloaded_age_seconds",
        "Age of the oldest event received after the warehouse's incremental watermark"
        " (0: every received event is loaded)",
    ),
    "notify_waiting": (
        "notify_deliveries_waiting",
        "Notification deliveries queued or deferred, due or not",
    ),
    "notify_due": (
        "notify_deliveries_due",
        "Notification deliveries queued or deferred and due now",
    ),
    "notify_oldest_due_age": (
        "notify_oldest_due_delivery_seconds",
        "How long the oldest due notification delivery has been due (0: none due)",
    ),
    "job_workers": (
        "job_workers",
        "Job-queue workers whose heartbeat is less than 60 s old",
    ),
    "jobs_due": (
        "jobs_due",
        "Jobs due and runnable (not waiting on a lock a running job holds)",
    ),
    "jobs_oldest_due_age": (
        "jobs_oldest_due_seconds",
        "How long the oldest due runnable job has been waiting (0: none)",
    ),
}
UP = PREFIX + "metrics_up"
SCRAPE_SECONDS = PREFIX + "metrics_scrape_seconds"


@dataclass(frozen=True)
class StateReading:
    """One read of the database's state: its row, or None when the database did not answer."""

    row: Row | None
    seconds: float


async def read_state(database_url: str, *, limit_seconds: float = TIMEOUT_SECONDS) -> StateReading:
    """Read the state row on a connection of its own, within `limit_seconds` overall."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit_seconds + 0.5):
            conn = await connect(
                database_url,
                application_name="mysetlist-state-metrics",
                connect_timeout=max(1, round(limit_seconds)),
            )
            try:
                async with conn.transaction():
                    await conn.execute(
                        read_sql(_PACKAGE, "state_metrics_settings.sql"),
                        {"timeout_ms": str(int(limit_seconds * 1000))},
                    )
                    cur = await conn.execute(read_sql(_PACKAGE, "state_metrics.sql"))
                    row = await cur.fetchone()
            finally:
                await conn.close()
    except Exception as exc:  # any failure means "the database's state is unknown"
        log.warning("state metrics: the database did not answer (%s)", type(exc).__name__)
        row = None
    return StateReading(row, time.monotonic() - started)


class StateCollector(Collector):
    """The gauges of one reading (a collector per scrape: the reading is its whole state)."""

    def __init__(self, reading: StateReading) -> None:
        self.reading = reading

    def collect(self) -> Iterator[Metric]:
        row = self.reading.row
        yield GaugeMetricFamily(
            UP,
            "1 when the database answered this scrape's state query, else 0",
            value=0 if row is None else 1,
        )
        yield GaugeMetricFamily(
            SCRAPE_SECONDS, "Time the state query took (connect included)", self.reading.seconds
        )
        if row is None:
            return
        for column, (name, help_text) in GAUGES.items():
            value = row[column]
            if value is None:  # never happened yet (no successful run, no daily load)
                continue
            yield GaugeMetricFamily(PREFIX + name, help_text, value=float(value))


def render_state(reading: StateReading) -> bytes:
    """The reading in Prometheus text format, to append to a process's own metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(reading))
    return generate_latest(registry)


def metric_names() -> list[str]:
    """Every metric name this module can expose (the alert-rule test checks against it)."""
    return [UP, SCRAPE_SECONDS, *(PREFIX + name for name, _ in GAUGES.values())]
