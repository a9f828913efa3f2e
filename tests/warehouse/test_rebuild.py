"""Defect 8: a demo that replaces the world must rebuild the warehouse, and
`mysetlist etl check` must see what a run's own checks cannot (they cover its range only).

The service: world A loaded; world B replaces A's events; a run over a few recent days
passes its checks while the whole-range check fails; the rebuild makes the whole range
pass and equals a load into an empty warehouse. The commands: `mysetlist demo` twice on the
same database with an `etl run` between, then `etl check` (exit 0), and exit 1 once the
warehouse disagrees with the events.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mysetlist.core.db import connect
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.core.job_queue import try_advisory_lock
from mysetlist.demo.world import WorldSpec, build_world
from mysetlist.warehouse import quality
from mysetlist.warehouse.claiming import LOCK_NAME
from mysetlist.warehouse.config import EtlConfig
from mysetlist.warehouse.errors import EtlBusy
from mysetlist.warehouse.rebuild import rebuild_warehouse
from tests.conftest import migrated_database
from tests.warehouse.conftest import one, run_range, table_contents, today

pytestmark = [pytest.mark.db, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CIPHER = FieldCipher(b"r" * 32)
DAYS = 10
FIRST = today() - timedelta(days=DAYS)  # the worlds' history starts on this day
# One present for every world built here: a world is a function of its seed and its present
# (by default the current hour), and two builds must not straddle an hour.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def first_event_day(url: str) -> date:
    """The day of the oldest event (the world's history starts at a time of day)."""
    day: date = one(
        url, "SELECT (min(created_at) AT TIME ZONE 'UTC')::date FROM analytics.user_events"
    )[0]
    assert FIRST <= day <= FIRST + timedelta(days=1)
    return day


async def _failed_checks(url: str) -> dict[str, dict[str, Any]]:
    async with await connect(url, application_name="test-etl-check") as conn:
        results = await quality.check_range(conn, first_event_day(url), today())
    return {r.name: r.details for r in results if not r.passed}


async def test_rebuild_after_the_world_was_replaced(servers: object) -> None:
    config = EtlConfig(parallelism=2)
    with migrated_database(servers.admin_url, "mysetlist_rebuild") as url:  # type: ignore[attr-defined]
        build_world(url, WorldSpec(users=40, days=DAYS, seed=1), cipher=CIPHER, now=NOW)
        assert (await run_range(url, FIRST, today(), config=config)).checks_status == "passed"
        assert await _failed_checks(url) == {}

        # World B replaces A's events; the scheduled runs only ever reload recent days.
        build_world(url, WorldSpec(users=40, days=DAYS, seed=2), cipher=CIPHER, now=NOW)
        recent = await run_range(url, today() - timedelta(days=1), today(), config=config)
        assert recent.checks_status == "passed"  # its own range is right …
        stale = await _failed_checks(url)  # … the days before it are world A's
        assert "events_reconcile" in stale
        assert stale["events_reconcile"]["mismatched_count"] >= DAYS - 2

        rebuilt = await rebuild_warehouse(url, config)
        assert rebuilt is not None
        assert (rebuilt.status, rebuilt.checks_status) == ("succeeded", "passed")
        assert rebuilt.from_day == first_event_day(url)
        assert rebuilt.to_day == today()
        assert await _failed_checks(url) == {}
        # The rebuilt warehouse is what loading world B into an empty one gives.
        after_rebuild = table_contents(url)
    with migrated_database(servers.admin_url, "mysetlist_rebuild") as fresh:  # type: ignore[attr-defined]
        build_world(fresh, WorldSpec(users=40, days=DAYS, seed=2), cipher=CIPHER, now=NOW)
        await run_range(fresh, FIRST, today(), config=config)
        counts = {t: len(rows) for t, rows in table_contents(fresh).items()}
    assert {t: len(rows) for t, rows in after_rebuild.items()} == counts


def _mysetlist(
    url: str, redis_url: str, data_dir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "MYSETLIST_DATA_DIR": str(data_dir),
        "ETL_PARALLELISM": "2",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "mysetlist", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_demo_twice_then_etl_check(wh_url: str, redis_url: str, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return _mysetlist(wh_url, redis_url, tmp_path, *args)

    demo = ("demo", "--users", "30", "--days", str(DAYS), "--no-serve")
    first = cli(*demo, "--seed", "1")
    assert first.returncode == 0, first.stderr
    # The scheduler would load world A meanwhile.
    loaded = cli("etl", "run", "--from", FIRST.isoformat(), "--to", today().isoformat())
    assert loaded.returncode == 0, loaded.stderr
    second = cli(*demo, "--seed", "2")
    assert second.returncode == 0, second.stderr
    span = ("--from", first_event_day(wh_url).isoformat(), "--to", today().isoformat())
    check = cli("etl", "check", *span)
    assert check.returncode == 0, check.stderr
    assert "every check passed" in check.stderr

    # One more event for a past day, received now: the warehouse is behind on that day.
    past = datetime.combine(FIRST + timedelta(days=3), datetime.min.time(), tzinfo=UTC)
    with psycopg.connect(wh_url) as conn:
        conn.execute(
            "INSERT INTO analytics.user_events (anonymous_id, event_type, created_at)"
            " VALUES ('late', 'page_view', %s)",
            (past + timedelta(hours=12),),
        )
    failing = cli("etl", "check", *span)
    assert failing.returncode == 1, failing.stderr
    assert "events_reconcile" in failing.stderr
    assert one(wh_url, "SELECT count(*) FROM analytics.etl_runs WHERE status = 'running'") == (0,)
    bad = cli("etl", "check", "--from", today().isoformat(), "--to", FIRST.isoformat())
    assert bad.returncode == 2


async def test_a_rebuild_waits_for_the_run_lock_and_clears_nothing_without_it(
    wh_url: str,
) -> None:
    """The warehouse is cleared under the run lock: while a run holds it, a rebuild
    gives up (EtlBusy) and the warehouse is as it was."""
    if one(wh_url, "SELECT count(*) FROM analytics.daily_platform_metrics") == (0,):
        await run_range(wh_url, today(), today())
    before = table_contents(wh_url)
    async with await connect(wh_url, application_name="test-run", autocommit=True) as holder:
        assert await try_advisory_lock(holder, LOCK_NAME)
        with pytest.raises(EtlBusy):
            await rebuild_warehouse(wh_url, EtlConfig(), wait_for_lock_s=0.2)
    assert table_contents(wh_url) == before
