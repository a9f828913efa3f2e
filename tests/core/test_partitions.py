"""core.partitions: one upkeep for daily (user_events, see tests/tracking/test_maintenance.py)
and monthly (daily_platform_metrics, here through the warehouse maintenance) partitions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest

from mysetlist.core.db import connect
from mysetlist.core.partitions import PartitionedTable, list_partitions
from mysetlist.warehouse import maintenance
from mysetlist.warehouse.config import EtlConfig
from tests.conftest import migrated_database

TABLE = maintenance.DAILY_PLATFORM_METRICS


def test_names_bounds_and_month_arithmetic() -> None:
    events = PartitionedTable("analytics", "user_events", "created_at", "day", "timestamptz")
    assert events.partition_name(date(2026, 12, 31)) == "user_events_20261231"
    assert events.next_start(date(2026, 12, 31)) == date(2027, 1, 1)
    assert str(events.bound(date(2026, 3, 1))) == "2026-03-01 00:00:00+00:00"
    assert TABLE.partition_name(date(2026, 12, 1)) == "daily_platform_metrics_202612"
    assert TABLE.start_of(date(2026, 12, 17)) == date(2026, 12, 1)
    assert TABLE.next_start(date(2026, 12, 1)) == date(2027, 1, 1)
    assert TABLE.start_from_name("daily_platform_metrics_202612") == date(2026, 12, 1)
    assert TABLE.start_from_name("daily_platform_metrics_default") is None


@pytest.fixture(scope="module")
def metrics_url(servers: Any) -> Iterator[str]:
    with migrated_database(servers.admin_url, "mysetlist_parts") as url:
        yield url


def _metrics_row(url: str, day: date) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            """INSERT INTO analytics.daily_platform_metrics
                 (day, events_total, identified_events, anonymous_events, active_users,
                  new_users, sessions, page_views, searches, votes, follows, unfollows, shares)
               VALUES (%s, 1, 1, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0)""",
            (day,),
        )


def _where(url: str, day: date) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT tableoid::regclass::text FROM analytics.daily_platform_metrics WHERE day = %s",
            (day,),
        ).fetchone()
    return row[0] if row else None


@pytest.mark.db
async def test_monthly_partitions_created_ahead_rows_moved_in_and_expired_dropped(
    metrics_url: str,
) -> None:
    url = metrics_url
    far = date(2031, 7, 15)
    _metrics_row(url, far)  # no partition for July 2031 yet: parked in the default one
    assert _where(url, far) == "analytics.daily_platform_metrics_default"
    config = EtlConfig(retention_days=400)
    conn = await connect(url, application_name="test-partitions", autocommit=True)
    try:
        report = await maintenance.partition_upkeep(conn, config, date(2031, 6, 10))
        names = {p.name for p in await list_partitions(conn, TABLE)}
        # from the oldest kept month to two months ahead, the parked row moved in
        assert {"daily_platform_metrics_203106", "daily_platform_metrics_203108"} <= names
        assert report["created"] >= 3
        assert _where(url, far) == "analytics.daily_platform_metrics_203107"
        # a second run creates nothing
        again = await maintenance.partition_upkeep(conn, config, date(2031, 6, 10))
        assert again == {"created": 0}
        # retention: months wholly before the cutoff go; the straddling month keeps its
        # days from the cutoff on
        _metrics_row(url, date(2031, 6, 2))
        _metrics_row(url, date(2031, 6, 20))
        cleanup = await maintenance.retention_cleanup(
            conn, EtlConfig(retention_days=30), date(2031, 7, 15)
        )
        after = {p.name for p in await list_partitions(conn, TABLE)}
    finally:
        await conn.close()
    assert cleanup["cutoff"] == "2031-06-15"
    assert "daily_platform_metrics_203105" in cleanup["dropped_partitions"]
    assert "daily_platform_metrics_203105" not in after
    assert "daily_platform_metrics_203106" in after
    assert _where(url, date(2031, 6, 2)) is None
    assert _where(url, date(2031, 6, 20)) == "analytics.daily_platform_metrics_203106"
    assert _where(url, far) == "analytics.daily_platform_metrics_203107"
    assert cleanup["deleted_rows"]["daily_platform_metrics"] == 1
