"""The incremental run's shortcuts give what a full recompute gives (issue 18: the
incremental run under 1 s): on a demo world loaded by a range run, one more hour of
traffic, an incremental run (every work connection: voting beside the day stage), then a
range run over today reloads the day whole and recomputes every rollup: the warehouse
tables are equal. And statement by statement: the incremental branch of a rollup
(`full` false) writes the same rows as its full branch for the same users."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import ClientCursor

from mysetlist.core.field_encryption import FieldCipher
from mysetlist.demo.world import WorldSpec, build_world
from mysetlist.warehouse import pipeline, steps
from mysetlist.warehouse.config import EtlConfig
from mysetlist.warehouse.sql_files import query, statements
from tests.conftest import migrated_database
from tests.warehouse.conftest import run_range, table_contents, today

pytestmark = [pytest.mark.db, pytest.mark.slow]

DAYS = 8
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
CONFIG = EtlConfig(parallelism=3)


@pytest.fixture(scope="module")
def world(servers: Any) -> Iterator[str]:
    with migrated_database(servers.admin_url, "mysetlist_wh_inc") as url:
        build_world(url, WorldSpec(users=300, days=DAYS, seed=18), cipher=FieldCipher(b"i" * 32),
                    now=NOW)  # fmt: skip
        with psycopg.connect(url) as conn:
            # bulk-loaded: give the events live arrival times, so the incremental run
            # after the hour of traffic below has only today to load
            conn.execute(
                "UPDATE analytics.user_events SET received_at = created_at + interval '2 seconds'"
            )
        yield url


async def _load(url: str) -> None:
    with psycopg.connect(url) as conn:
        first = conn.execute("SELECT min(created_at) FROM analytics.user_events").fetchone()
    assert first is not None
    full = await run_range(url, first[0].date(), today(), config=CONFIG)
    assert (full.status, full.checks_status) == ("succeeded", "passed")


def _user_rows(url: str, table: str, users: list[Any]) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT * FROM analytics.{table} WHERE user_id = ANY(%s)", (users,)
        ).fetchall()
    return sorted(rows, key=repr)


async def test_user_behavior_incremental_branch_equals_the_full_branch(world: str) -> None:
    await _load(world)
    with psycopg.connect(world, cursor_factory=ClientCursor) as conn:
        users = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT user_id FROM analytics.daily_user_stats ORDER BY 1 LIMIT 120"
            )
        ]
    got = {}
    for full in (True, False):
        with (
            psycopg.connect(world, cursor_factory=ClientCursor) as conn,
            conn.transaction(force_rollback=True),
        ):
            conn.execute(query("rollup_scope_create"))
            # the scope as incremental runs fill it, plus a user with no day rows (no row)
            conn.execute(
                "INSERT INTO etl_scope SELECT 'user', u::text, u FROM unnest(%s::uuid[]) u",
                ([*users, uuid.UUID("00000000-0000-4000-8000-00000000ffff")],),
            )
            conn.execute("DELETE FROM analytics.user_behavior_warehouse")
            for stmt in statements("user_behavior_warehouse"):
                conn.execute(stmt, {"full": full})
            got[full] = sorted(
                conn.execute("SELECT * FROM analytics.user_behavior_warehouse").fetchall(),
                key=repr,
            )
    assert len(got[True]) == len(users)
    assert got[False] == got[True]


async def test_incremental_run_equals_reloading_the_day(world: str) -> None:
    await _load(world)
    # One more hour of traffic: yesterday's events of the last hour, moved to today and
    # received now (as bench/etl_bench.py adds it).
    warm = await pipeline.execute(
        world, CONFIG, request=pipeline.RunRequest(trigger="cli", mode="incremental")
    )
    assert warm is not None
    with psycopg.connect(world) as conn:
        added = conn.execute(
            """INSERT INTO analytics.user_events
                 (user_id, anonymous_id, session_id, event_type, page_url, properties, source,
                  created_at, received_at)
               SELECT user_id, anonymous_id, session_id, event_type, page_url, properties,
                      'test', created_at + interval '1 day', clock_timestamp()
                 FROM analytics.user_events
                WHERE created_at >= %(now)s - interval '25 hours'
                  AND created_at < %(now)s - interval '24 hours'""",
            {"now": NOW},
        ).rowcount
    assert added > 0
    inc = await pipeline.execute(
        world, CONFIG, request=pipeline.RunRequest(trigger="cli", mode="incremental")
    )
    assert inc is not None
    assert (inc.status, inc.checks_status, inc.days) == ("succeeded", "passed", 1)
    # voting ran beside the day stage, and the rollups after it
    assert {"voting_patterns_warehouse", "user_behavior_warehouse"} <= set(inc.step_timings)
    incremental = table_contents(world)
    # the day is recorded as loaded with its events (the day's events_total)
    start = datetime.combine(today(), datetime.min.time(), tzinfo=UTC)
    with psycopg.connect(world) as conn:
        loaded = conn.execute(
            """SELECT l.events, m.events_total,
                      (SELECT count(*) FROM analytics.user_events
                        WHERE created_at >= %(start)s AND created_at < %(start)s + interval '1 day')
                 FROM analytics.etl_loaded_days l
                 JOIN analytics.daily_platform_metrics m USING (day)
                WHERE day = %(day)s""",
            {"start": start, "day": today()},
        ).fetchone()
    assert loaded is not None
    assert loaded[0] == loaded[1] == loaded[2] > 0
    reload = await run_range(world, today(), today(), config=CONFIG)
    assert (reload.status, reload.checks_status) == ("succeeded", "passed")
    reloaded = table_contents(world)
    for table in steps.TABLES:
        assert reloaded[table] == incremental[table], table
