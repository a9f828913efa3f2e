"""Run mechanics: a worker killed mid-day leaves no half-loaded day and the next run
completes it (and, killed in a first backfill, builds the indexes it dropped); a first
backfill ends with every index as it was and the rows a reload gives; the incremental run
picks up only what arrived since the watermark; maintenance (retention, partitions, index
health with REINDEX CONCURRENTLY)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mysetlist.core.db import connect
from mysetlist.tracking.events import EventRow, IdentityLink
from mysetlist.tracking.group_commit import GroupCommitWriter
from mysetlist.warehouse import pipeline, steps
from mysetlist.warehouse.config import EtlConfig
from mysetlist.warehouse.ranges import WATERMARK
from mysetlist.warehouse.rebuild import clear_warehouse
from tests.conditions import until, wait_until
from tests.warehouse.conftest import (
    etl_backends,
    etl_backends_waiting_on_a_lock,
    one,
    run_range,
    table_contents,
    today,
)

pytestmark = pytest.mark.db

D0 = today() - timedelta(days=40)
DAYS = [D0 + timedelta(days=i) for i in range(5)]
DAY_TABLES = (*steps.DAY_GRAINED_TABLES, steps.LOADED_DAYS_TABLE)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(wh_url: str) -> str:
    """200 users, 3 artists with shows, ~600 events a day over DAYS, some votes."""
    with psycopg.connect(wh_url) as conn:
        conn.execute(
            """INSERT INTO app.users (id, display_name, created_at)
               SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'u' || i,
                      %s::timestamptz - interval '3 days' + i * interval '1 minute'
                 FROM generate_series(1, 200) i""",
            (datetime.combine(D0, datetime.min.time(), tzinfo=UTC),),
        )
        conn.execute(
            "INSERT INTO app.artists (id, name, genres)"
            " VALUES (1,'a','{rock}'), (2,'b','{pop}'), (3,'c','{jazz,pop}')"
        )
        conn.execute("INSERT INTO app.venues (id, name, city, country) VALUES (1, 'v', 'c', 'US')")
        conn.execute(
            """INSERT INTO app.shows (id, artist_id, venue_id, starts_at, status)
               SELECT i, 1 + i %% 3, 1, %s::timestamptz + i * interval '1 day', 'completed'
                 FROM generate_series(1, 6) i""",
            (datetime.combine(D0, datetime.min.time(), tzinfo=UTC),),
        )
        conn.execute(
            "INSERT INTO app.songs (id, artist_id, title)"
            " SELECT i, 1 + i % 3, 's' || i FROM generate_series(1, 30) i"
        )
        conn.execute(
            """INSERT INTO app.setlist_songs (show_id, position, song_id)
               SELECT sh.id, row_number() OVER (PARTITION BY sh.id ORDER BY so.id), so.id
                 FROM app.shows sh
                 JOIN app.songs so ON so.artist_id = sh.artist_id AND so.id % 2 = 0"""
        )
        conn.execute(
            """INSERT INTO app.setlist_votes (user_id, show_id, song_id, created_at)
               SELECT DISTINCT ON (u, sh.id, so.id)
                      ('00000000-0000-4000-8000-' || lpad(u::text, 12, '0'))::uuid, sh.id, so.id,
                      %s::timestamptz + (u %% 5) * interval '1 day' + u * interval '3 minutes'
                 FROM generate_series(1, 200, 3) u
                 JOIN app.shows sh ON sh.id = 1 + u %% 6
                 JOIN app.songs so ON so.artist_id = sh.artist_id AND so.id %% 3 <> u %% 3""",
            (datetime.combine(D0, datetime.min.time(), tzinfo=UTC),),
        )
        conn.execute(
            """INSERT INTO analytics.user_events
                 (user_id, anonymous_id, session_id, event_type, page_url, properties,
                  created_at, received_at)
               SELECT CASE WHEN i %% 10 = 0 THEN NULL
                           ELSE ('00000000-0000-4000-8000-'
                                 || lpad((1 + i %% 200)::text, 12, '0'))::uuid END,
                      CASE WHEN i %% 10 = 0 THEN 'anon-' || (i %% 37) END, 's' || (i %% 400),
                      (ARRAY['page_view', 'artist_view', 'show_view', 'search', 'follow',
                             'share'])[1 + i %% 6],
                      '/p/' || (i %% 50),
                      jsonb_build_object('artist_id', 1 + i %% 3, 'show_id', 1 + i %% 6),
                      %s::timestamptz + i * interval '143 seconds',
                      %s::timestamptz + i * interval '143 seconds' + interval '2 seconds'
                 FROM generate_series(0, 3000) i""",
            (datetime.combine(D0, datetime.min.time(), tzinfo=UTC),) * 2,
        )
    return wh_url


def _day_rows(url: str) -> dict[str, set[Any]]:
    out = {}
    with psycopg.connect(url) as conn:
        for table in DAY_TABLES:
            out[table] = {r[0] for r in conn.execute(f"SELECT DISTINCT day FROM analytics.{table}")}
    return out


def _indexes(url: str) -> set[tuple[str, ...]]:
    """Every index and constraint of the warehouse tables, with its definition."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """SELECT 'index', tablename, indexname, indexdef FROM pg_indexes
                WHERE schemaname = 'analytics' AND tablename = ANY(%(t)s)
               UNION ALL
               SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                 FROM pg_constraint
                WHERE connamespace = 'analytics'::regnamespace
                  AND conrelid::regclass::text = ANY(%(qualified)s)""",
            {"t": list(steps.TABLES), "qualified": [f"analytics.{t}" for t in steps.TABLES]},
        ).fetchall()
    return set(rows)


def test_killed_worker_leaves_no_half_loaded_day(
    world: str, redis_url: str, tmp_path: Path
) -> None:
    url = world
    stuck = DAYS[2]
    assert one(url, "SELECT count(*) FROM analytics.daily_user_stats")[0] == 0
    indexes = _indexes(url)
    assert ("constraint", "analytics.daily_user_stats", "daily_user_stats_pkey",
            "PRIMARY KEY (user_id, day)") in indexes  # fmt: skip
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "MYSETLIST_DATA_DIR": str(tmp_path),
        "ETL_PARALLELISM": "1",
        "ETL_LOCK_TIMEOUT_MS": "0",  # wait for the blocker as long as it holds on
    }
    # Real contention: an open transaction holds day `stuck`'s etl_loaded_days row, which
    # the day's last statement upserts, so that day's load waits with everything else of
    # the day done but not committed.
    blocker = psycopg.connect(url)
    try:
        blocker.execute(
            "INSERT INTO analytics.etl_loaded_days (day, run_id, loaded_at, events, partial)"
            " VALUES (%s, 0, now(), 0, false)",
            (stuck,),
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "mysetlist", "etl", "run", "--from", DAYS[0].isoformat(),
             "--to", DAYS[-1].isoformat()],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            wait_until(lambda: etl_backends_waiting_on_a_lock(url) == 1, "the slow day")
            # Days load newest first: DAYS[4] and DAYS[3] committed, `stuck` is waiting.
            assert one(url, "SELECT status, days_done FROM analytics.etl_runs")[0:2] == (
                "running",
                2,
            )
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        # The server notices the dead client (client_connection_check_interval) and ends
        # its session, rolling the day back, while the blocker still holds on.
        wait_until(lambda: etl_backends(url) == 0, "the killed run's session to end", within=10)
    finally:
        blocker.rollback()
        blocker.close()
    loaded = _day_rows(url)
    for table, days in loaded.items():
        assert stuck not in days, table  # nothing of the day being loaded survived
    # The two days that committed before it are complete in every day table.
    done = loaded["etl_loaded_days"]
    assert len(done) == 2
    assert stuck not in done
    for table, days in loaded.items():
        assert days == done, table
    # It was a first backfill (empty tables): it loaded without their indexes, recorded.
    dropped = indexes - _indexes(url)
    assert {name for _, _, name, _ in dropped} >= {"daily_user_stats_pkey"}
    with psycopg.connect(url) as conn:
        recorded = conn.execute("SELECT index_name FROM analytics.etl_deferred_indexes").fetchall()
    assert {r[0] for r in recorded} == {name for kind, _, name, _ in dropped if kind == "index"}

    # The next run closes the abandoned one, builds the indexes the killed one dropped
    # (exactly as they were) and completes every day.
    result = asyncio.run(run_range(url, DAYS[0], DAYS[-1]))
    assert result.status == "succeeded"
    assert result.checks_status == "passed"
    assert _indexes(url) == indexes
    assert one(url, "SELECT count(*) FROM analytics.etl_deferred_indexes")[0] == 0
    abandoned = one(url, "SELECT status, error FROM analytics.etl_runs ORDER BY id LIMIT 1")
    assert abandoned[0] == "failed"
    assert "abandoned" in abandoned[1]
    assert all(days == set(DAYS) for days in _day_rows(url).values())
    # …and gives what a clean run gives.
    complete = table_contents(url)
    assert asyncio.run(run_range(url, DAYS[0], DAYS[-1])).status == "succeeded"
    assert table_contents(url) == complete


async def test_a_first_backfill_builds_every_index_again_and_equals_a_reload(
    world: str,
) -> None:
    """On empty day tables a range run loads without their indexes and nothing to delete
    (`build indexes` is its extra stage); after it every index and constraint is back as
    it was, and a reload of the same days (with indexes and deletes) writes the same rows."""
    async with await connect(world, application_name="test-clear") as conn:
        await clear_warehouse(conn)
    indexes = _indexes(world)
    seen: list[str] = []

    def progress(step: str, done: int, total: int) -> None:
        seen.append(step)

    config = EtlConfig(parallelism=2)
    request = pipeline.RunRequest(trigger="cli", mode="range", from_day=DAYS[0], to_day=DAYS[-1])
    first = await pipeline.execute(world, config, request=request, progress=progress)
    assert first is not None
    assert first.status == "succeeded"
    assert first.checks_status == "passed"
    assert "build indexes" in seen
    assert _indexes(world) == indexes
    backfilled = table_contents(world)
    assert backfilled["daily_user_stats"]
    assert backfilled["artist_popularity_warehouse"]

    seen.clear()
    again = await pipeline.execute(world, config, request=request, progress=progress)
    assert again is not None
    assert again.status == "succeeded"
    assert "build indexes" not in seen  # tables not empty: an ordinary reload
    assert table_contents(world) == backfilled
    assert _indexes(world) == indexes


async def test_incremental_run_takes_only_new_arrivals(world: str) -> None:
    url = world
    config = EtlConfig(parallelism=1)
    incremental = pipeline.RunRequest(trigger="incremental", mode="incremental")
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        conn.execute(
            """INSERT INTO analytics.user_events (user_id, event_type, page_url, created_at)
               SELECT '00000000-0000-4000-8000-000000000001', 'page_view', '/x/' || i,
                      %s::timestamptz - i * interval '1 minute'
                 FROM generate_series(1, 5) i""",
            (now,),
        )
    first = await pipeline.execute(url, config, request=incremental)
    assert first is not None
    assert (first.status, first.days, first.to_day) == ("succeeded", 1, now.date())
    assert first.checks_status == "passed"
    metrics = (
        "SELECT events_total, active_users FROM analytics.daily_platform_metrics WHERE day = %s"
    )
    assert one(url, metrics, (now.date(),)) == (5, 1)
    assert one(
        url, "SELECT partial FROM analytics.etl_loaded_days WHERE day = %s", (now.date(),)
    ) == (True,)
    # Nothing new: nothing done.
    assert not await pipeline.has_new_events(url)  # the schedule's pre-check agrees
    idle = await pipeline.execute(url, config, request=incremental)
    assert idle is not None
    assert (idle.status, idle.days, idle.step_timings) == ("succeeded", 0, {})
    # One more event: today is reloaded whole, the watermark moves on.
    behavior = "SELECT events FROM analytics.user_behavior_warehouse WHERE user_id = %s"
    u2 = ("00000000-0000-4000-8000-000000000002",)
    (u2_events,) = one(url, behavior, u2)
    with psycopg.connect(url) as conn:
        conn.execute(
            """INSERT INTO analytics.user_events (user_id, event_type, page_url, created_at)
               VALUES ('00000000-0000-4000-8000-000000000002', 'search', '/s', now())"""
        )
    assert await pipeline.has_new_events(url)
    again = await pipeline.execute(url, config, request=incremental)
    assert again is not None
    assert again.days == 1
    assert one(url, metrics, (now.date(),)) == (6, 2)
    wm = one(url, "SELECT position FROM analytics.watermarks WHERE name = %s", (WATERMARK,))[0]
    newest = one(url, "SELECT max(received_at) FROM analytics.user_events")[0]
    assert wm == newest
    # The user's behaviour row follows (user rollups take the incremental scope).
    assert one(url, behavior, u2) == (u2_events + 1,)
    # A visitor browsed today (loaded as anonymous), then signs in with an event stamped
    # yesterday (a late delivery): today's visits become u7's, and the next incremental run
    # (its range reaches back to the late event's day, u7 is in its scope) counts them.
    u7 = "00000000-0000-4000-8000-000000000007"
    with psycopg.connect(url) as conn:
        conn.execute(
            """INSERT INTO analytics.user_events
                 (anonymous_id, session_id, event_type, page_url, created_at)
               SELECT 'visitor-x', 'vs-x', 'page_view', '/v/' || i, now() - i * interval '1 s'
                 FROM generate_series(1, 3) i"""
        )
    assert (await pipeline.execute(url, config, request=incremental)) is not None
    writer = GroupCommitWriter(url, connections=1)
    await writer.start()
    try:
        await writer.submit([EventRow(
            uuid.uuid4().hex, uuid.UUID(u7), "visitor-x", None, "page_view", None, "{}",
            "test", datetime.now(UTC) - timedelta(days=1),
        )], [IdentityLink("anonymous", "visitor-x", uuid.UUID(u7))])  # fmt: skip
    finally:
        await writer.stop()
    linked = await pipeline.execute(url, config, request=incremental)
    assert linked is not None
    assert linked.status == "succeeded"
    stats = "SELECT events FROM analytics.daily_user_stats WHERE user_id = %s AND day = %s"
    assert one(url, stats, (u7, datetime.now(UTC).date())) == (3,)
    # Reloading only the touched users gave what reloading the whole day gives.
    scoped = table_contents(url)
    full = await run_range(url, now.date(), now.date(), config=config)
    assert full.status == "succeeded"
    reloaded = table_contents(url)
    for table in (
        "daily_user_stats", "user_engagement_warehouse", "user_behavior_warehouse",
        "daily_platform_metrics", "artist_popularity_warehouse", "show_engagement_warehouse",
    ):  # fmt: skip
        assert reloaded[table] == scoped[table], table


async def test_daily_run_follows_the_watermark(world: str) -> None:
    url = world
    config = EtlConfig(parallelism=2, lookback_days=2)
    daily = pipeline.RunRequest(trigger="schedule", mode="daily")
    yesterday = today() - timedelta(days=1)
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM analytics.watermarks WHERE name = %s", (WATERMARK,))
    # No full day recorded yet: from the first event (within ETL_INITIAL_DAYS) to yesterday.
    first = await pipeline.execute(url, config, request=daily)
    assert first is not None
    assert (first.status, first.from_day, first.to_day) == ("succeeded", DAYS[0], yesterday)
    assert first.days == (yesterday - DAYS[0]).days + 1
    assert one(
        url, "SELECT last_full_day FROM analytics.watermarks WHERE name = %s", (WATERMARK,)
    ) == (yesterday,)
    # Next time: only the lookback window before the watermark (late events), not today.
    second = await pipeline.execute(url, config, request=daily)
    assert second is not None
    assert (second.from_day, second.to_day, second.days) == (
        yesterday - timedelta(days=1),
        yesterday,
        2,
    )
    assert second.checks_status == "passed"


def test_cli_exits_non_zero_when_a_statement_times_out(
    world: str, redis_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": world,
        "REDIS_URL": redis_url,
        "MYSETLIST_DATA_DIR": str(tmp_path),
        "ETL_TIMEOUT_MS": "1000",  # ETL_CONFIG timeout, as statement_timeout
        "ETL_LOCK_TIMEOUT_MS": "0",  # a lock wait lasts up to the statement timeout
    }
    day = DAYS[0].isoformat()
    # Real contention: daily_user_stats is locked for longer than the statement timeout.
    with psycopg.connect(world) as blocker:
        blocker.execute("LOCK TABLE analytics.daily_user_stats IN ACCESS EXCLUSIVE MODE")
        done = subprocess.run(
            [sys.executable, "-m", "mysetlist", "etl", "run", "--from", day, "--to", day],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        blocker.rollback()
    assert done.returncode == 1, done.stderr
    status, error = one(
        world, "SELECT status, error FROM analytics.etl_runs ORDER BY id DESC LIMIT 1"
    )
    assert status == "failed"
    assert "QueryCanceled" in error
    assert "statement timeout" in error
    # The day it was loading is intact (its transaction rolled back as a whole).
    assert one(
        world, "SELECT count(*) FROM analytics.etl_loaded_days WHERE day = %s", (DAYS[0],)
    ) == (1,)


async def _lock_wait_started_at(conn: psycopg.AsyncConnection[Any], table: str) -> Any:
    """When the transaction waiting for a lock on `table` began (None: nobody waits)."""
    cur = await conn.execute(
        """SELECT a.xact_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.relation = %s::regclass AND NOT l.granted""",
        (table,),
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def test_a_day_blocked_by_a_lock_is_retried_whole(world: str) -> None:
    day, table = DAYS[2], "analytics.user_engagement_warehouse"
    config = EtlConfig(parallelism=1, lock_timeout_ms=150, max_retries=3)
    connect = psycopg.AsyncConnection.connect
    async with await connect(world) as blocker, await connect(world, autocommit=True) as spy:
        await blocker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        run = asyncio.create_task(run_range(world, day, day, config=config))

        async def waiting_since(earlier: object) -> object:
            """When the day's load began waiting on the table, unless that was `earlier`."""
            assert not run.done()
            started = await _lock_wait_started_at(spy, table)
            return None if started in (None, earlier) else started

        first = await until(lambda: waiting_since(None), "the day's load at the table", within=20)
        # That attempt gives up (lock_timeout) and the day's transaction starts again.
        await until(lambda: waiting_since(first), "the day's load retried", within=20)
        await blocker.rollback()
    result = await run
    assert result.status == "succeeded", result.error
    assert 1 <= result.step_timings["daily_user_stats"]["retries"] <= 3
    # the retried day is exactly what an undisturbed load writes
    retried = table_contents(world)
    again = await run_range(world, day, day, config=config)
    assert "retries" not in again.step_timings["daily_user_stats"]
    assert table_contents(world) == retried


async def test_a_day_still_blocked_after_the_retries_fails_and_writes_nothing(
    world: str,
) -> None:
    day, table = DAYS[3], "analytics.user_engagement_warehouse"
    config = EtlConfig(parallelism=1, lock_timeout_ms=100, max_retries=1)
    before = table_contents(world)
    async with await psycopg.AsyncConnection.connect(world) as blocker:
        await blocker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        # transient: the job queue retries the whole run later, with its own backoff
        with pytest.raises(pipeline.EtlTransient, match="lock timeout"):
            await run_range(world, day, day, config=config)
        await blocker.rollback()
    status, error, timings = one(
        world,
        "SELECT status, error, step_timings FROM analytics.etl_runs ORDER BY id DESC LIMIT 1",
    )
    assert status == "failed"
    assert "LockNotAvailable" in error
    assert timings["daily_user_stats"]["retries"] == 1
    assert table_contents(world) == before


async def test_maintenance_retention_and_reindex(world: str) -> None:
    url = world
    config = EtlConfig(
        parallelism=1, retention_days=35, reindex_bloat_ratio=0.0001, reindex_min_bytes=0
    )
    old_days = one(
        url, "SELECT count(*) FROM analytics.daily_user_stats WHERE day < %s",
        (today() - timedelta(days=35),),
    )[0]  # fmt: skip
    assert old_days > 0
    result = await run_range(url, today(), today(), steps=["analyze", "maintenance"], config=config)
    assert result.status == "succeeded"
    report = one(url, "SELECT maintenance FROM analytics.etl_runs WHERE id = %s", (result.run_id,))[
        0
    ]
    assert report["retention"]["deleted_rows"]["daily_user_stats"] == old_days
    assert (
        one(
            url,
            "SELECT count(*) FROM analytics.daily_user_stats WHERE day < %s",
            (today() - timedelta(days=35),),
        )[0]
        == 0
    )
    indexes = {i["index"]: i for i in report["indexes"]}
    assert "idx_user_behavior_engagement" in indexes
    assert "idx_artist_popularity_trending" in indexes
    assert any(i["reindexed"] for i in indexes.values())
    # Partitions: this month and the next two exist.
    parts = {
        r[0]
        for r in psycopg.connect(url).execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'analytics.daily_platform_metrics'::regclass"
        )
    }
    this_month = today().replace(day=1)
    assert f"daily_platform_metrics_{this_month:%Y%m}" in parts


async def test_incremental_voting_patterns_equal_a_full_recompute(world: str) -> None:
    """An incremental run rebuilds its fans' user-grain voting rows from their own votes
    (each looked up in the setlist by index): the same rows a full run computes."""
    url = world
    config = EtlConfig(parallelism=1)
    user = (
        "SELECT * FROM analytics.voting_patterns_warehouse WHERE grain = 'user' ORDER BY scope_id"
    )
    await run_range(url, DAYS[0], DAYS[-1], config=config)
    before = {r[1]: r for r in _rows(url, user)}
    u1, u2 = (f"00000000-0000-4000-8000-{i:012d}" for i in (1, 2))
    with psycopg.connect(url) as conn:
        # show 1 (artist 2) played its even songs; song 4 again as an encore (one correct
        # vote, not two). u2 never voted; u1 (show 2 so far) adds show 1.
        conn.execute("INSERT INTO app.setlist_songs (show_id, position, song_id) VALUES (1, 99, 4)")
        conn.execute(
            """INSERT INTO app.setlist_votes (user_id, show_id, song_id, created_at)
               VALUES (%(u1)s, 1, 4, now()), (%(u1)s, 1, 7, now()),
                      (%(u2)s, 1, 4, now()), (%(u2)s, 1, 10, now()), (%(u2)s, 1, 13, now())""",
            {"u1": u1, "u2": u2},
        )
        conn.execute(
            """INSERT INTO analytics.user_events (user_id, event_type, page_url, created_at)
               VALUES (%s, 'page_view', '/votes', now())""",
            (u2,),
        )
    inc = await pipeline.execute(
        url, config, request=pipeline.RunRequest(trigger="incremental", mode="incremental")
    )
    assert inc is not None
    assert inc.status == "succeeded", inc.error
    incremental = {r[1]: r for r in _rows(url, user)}
    # u2's row is new (2 of 3 correct); u1's counts grew by show 1's 2 votes (1 correct).
    counts = (
        "SELECT votes, shows_voted, votes_on_happened_shows, correct_votes"
        " FROM analytics.voting_patterns_warehouse WHERE grain = 'user' AND scope_id = %s"
    )
    assert u2 not in before
    assert one(url, counts, (u2,)) == (3, 1, 3, 2)
    # u1: 10 votes on show 2 (its 5 even songs played), then 2 on show 1
    assert (before[u1][5], before[u1][7], before[u1][8], before[u1][9]) == (10, 1, 10, 5)
    assert one(url, counts, (u1,)) == (12, 2, 12, 6)
    full = await run_range(url, today(), today(), config=config)
    assert full.status == "succeeded"
    assert {r[1]: r for r in _rows(url, user)} == incremental


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()
