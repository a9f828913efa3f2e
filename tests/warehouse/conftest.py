"""Warehouse fixtures: a fresh, migrated database per test module (so warehouse numbers
are exact, whatever other test files put in the session's shared database), and helpers
to run the pipeline and read whole tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest

from mysetlist.warehouse import pipeline, steps
from mysetlist.warehouse.config import EtlConfig
from tests.conftest import migrated_database

WAREHOUSE_TABLES = (*steps.TABLES, *steps.MATERIALIZED_VIEWS)


@pytest.fixture(scope="module")
def wh_url(servers: Any) -> Iterator[str]:
    with migrated_database(servers.admin_url, "mysetlist_wh") as url:
        yield url


def at(day: date, hhmm: str = "00:00", seconds: int = 0) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime.combine(day, time(h, m, seconds), tzinfo=UTC)


def today() -> date:
    return datetime.now(UTC).date()


async def run_range(
    url: str,
    frm: date,
    to: date,
    *,
    steps: list[str] | None = None,
    config: EtlConfig | None = None,
) -> pipeline.RunResult:
    result = await pipeline.execute(
        url,
        config or EtlConfig(parallelism=2),
        request=pipeline.RunRequest(
            trigger="cli", mode="range", from_day=frm, to_day=to, steps=steps
        ),
    )
    assert result is not None
    return result


def table_contents(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every warehouse table, in a stable order."""
    out = {}
    with psycopg.connect(url) as conn:
        for table in WAREHOUSE_TABLES:
            rows = conn.execute(f"SELECT * FROM analytics.{table}").fetchall()
            out[table] = sorted(rows, key=repr)
    return out


def one(url: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    return row


def add_days(d: date, n: int) -> date:
    return d + timedelta(days=n)


def etl_backends_waiting_on_a_lock(url: str) -> int:
    """The ETL's database sessions blocked on a lock (a test holds it: real contention)."""
    return int(
        one(
            url,
            """SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock'
                  AND application_name LIKE 'mysetlist-etl%%'""",
        )[0]
    )


def etl_backends(url: str) -> int:
    return int(
        one(
            url,
            """SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database()
                  AND application_name LIKE 'mysetlist-etl run%%'""",
        )[0]
    )
