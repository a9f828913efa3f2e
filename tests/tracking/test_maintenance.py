"""Rollups (incremental by watermark), platform_metrics, partition upkeep and retention."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.tracking import maintenance
from mysetlist.tracking.config import TrackingSettings
from mysetlist.tracking.events import EventRow, IdentityLink
from mysetlist.tracking.group_commit import GroupCommitWriter

pytestmark = pytest.mark.db


def _row(event_type: str, at: datetime, *, user: str | None = None, anon: str | None = None,
         session: str | None = None) -> EventRow:  # fmt: skip
    return EventRow(uuid.uuid4().hex, uuid.UUID(user) if user else None, anon, session,
                    event_type, None, "{}", "test", at)  # fmt: skip


async def _write(
    runtime: Runtime, rows: list[EventRow], links: Sequence[IdentityLink] = ()
) -> None:
    writer = GroupCommitWriter(runtime.database_url, connections=1)
    await writer.start()
    try:
        await writer.submit(rows, links)
    finally:
        await writer.stop()


async def _hourly(runtime: Runtime, hour: datetime) -> dict[str, tuple[int, int, int, int]]:
    rows = await runtime.db.fetch_all(
        "SELECT event_type, event_count, unique_users, unique_sessions, unique_anonymous"
        " FROM analytics.hourly_real_time_metrics WHERE hour = %s",
        (hour,),
    )
    return {r["event_type"]: (r["event_count"], r["unique_users"], r["unique_sessions"],
                              r["unique_anonymous"]) for r in rows}  # fmt: skip


async def test_hourly_rollup_matches_hand_computed_and_is_incremental(runtime: Runtime) -> None:
    tracking = TrackingSettings()
    # an hour nobody else writes to: 5 hours ago, on the hour
    hour = (datetime.now(UTC) - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    u1, u2 = str(uuid.uuid4()), str(uuid.uuid4())
    t = hour + timedelta(minutes=10)
    await _write(runtime, [
        _row("vote", t, user=u1, session="s1"),
        _row("vote", t, user=u1, session="s1"),
        _row("vote", t, user=u2, session="s2"),
        _row("page_view", t, user=u1, session="s1"),
        _row("page_view", t, anon="a1", session="s3"),
        _row("page_view", t, anon="a2", session="s4"),
        _row("page_view", t, anon="a1", session="s3"),
        _row("vote", hour + timedelta(minutes=70), user=u1, session="s1"),  # next hour
    ])  # fmt: skip
    run = await maintenance.rollup_hourly(runtime.db, tracking, lag=timedelta(0))
    assert run.rows > 0
    got = await _hourly(runtime, hour)
    # hand-computed: (events, distinct users, distinct sessions, distinct anonymous ids)
    assert got == {
        "vote": (3, 2, 2, 0),
        "page_view": (4, 1, 3, 2),
        "*": (7, 2, 4, 2),
    }
    # a late event for that hour arrives; the next run picks it up by watermark
    await _write(runtime, [_row("vote", hour + timedelta(minutes=59), anon="a3", session="s9")])
    await maintenance.rollup_hourly(runtime.db, tracking, lag=timedelta(0))
    got = await _hourly(runtime, hour)
    assert got["vote"] == (4, 2, 3, 1)
    assert got["*"] == (8, 2, 5, 3)
    # visitor a1 signs in now: its earlier events in that hour become u3's, and the next
    # run recomputes the hour although nothing new was received for it
    u3 = str(uuid.uuid4())
    await _write(
        runtime,
        [_row("page_view", datetime.now(UTC), user=u3, anon="a1")],
        [IdentityLink("anonymous", "a1", uuid.UUID(u3))],  # proven at ingest
    )
    await maintenance.rollup_hourly(runtime.db, tracking, lag=timedelta(0))
    got = await _hourly(runtime, hour)
    assert got["page_view"] == (4, 2, 3, 1)  # users u1, u3; anonymous a2 only
    assert got["*"] == (8, 3, 5, 2)
    assert got["vote"] == (4, 2, 3, 1)
    # re-running with nothing new changes nothing
    await maintenance.rollup_hourly(runtime.db, tracking, lag=timedelta(0))
    assert await _hourly(runtime, hour) == got
    runs = await runtime.db.fetch_all(
        "SELECT status, rows, finished_at FROM analytics.job_runs"
        " WHERE task = 'tracking.hourly_rollup' ORDER BY id DESC LIMIT 3"
    )
    assert [r["status"] for r in runs] == ["succeeded"] * 3
    assert all(r["finished_at"] is not None for r in runs)


async def test_hourly_cleanup_and_public_platform_metrics(runtime: Runtime) -> None:
    tracking = TrackingSettings(hourly_metrics_retention_hours=48)
    old = (datetime.now(UTC) - timedelta(days=5)).replace(minute=0, second=0, microsecond=0)
    async with runtime.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO analytics.hourly_real_time_metrics VALUES (%s, 'x', 1, 1, 1, 1, now())",
            (old,),
        )
    await _write(runtime, [_row("vote", datetime.now(UTC), user=str(uuid.uuid4()), session="p")])
    await maintenance.rollup_hourly(runtime.db, tracking, lag=timedelta(0))
    assert await _hourly(runtime, old) == {}
    # platform_metrics is public: readable by the anon role through RLS USING (true)
    async with runtime.db.as_role("anon", {"role": "anon"}) as conn:
        cur = await conn.execute(
            "SELECT metric_name, metric_value FROM public.platform_metrics"
            " WHERE recorded_at = (SELECT max(recorded_at) FROM public.platform_metrics)"
        )
        metrics = dict(await cur.fetchall())
    assert metrics["active_users"] >= 1
    assert metrics["votes_this_hour"] >= 1
    assert {"events_this_hour", "active_sessions", "unique_users_this_hour"} <= set(metrics)


async def _partitions(runtime: Runtime) -> set[str]:
    rows = await runtime.db.fetch_all(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'analytics.user_events'::regclass"
    )
    return {r["relname"] for r in rows}


async def test_partition_upkeep_creates_ahead_and_out_of_range_events_are_stored(
    runtime: Runtime,
) -> None:
    tracking = TrackingSettings()
    far = datetime(2031, 7, 1, 12, tzinfo=UTC)  # no partition exists for this day
    far_row = _row("search", far, anon="future")
    await _write(runtime, [far_row])
    stored = await runtime.db.fetch_all(
        "SELECT tableoid::regclass::text AS part FROM analytics.user_events WHERE message_id = %s",
        (far_row.message_id,),
    )
    assert [r["part"] for r in stored] == ["analytics.user_events_default"]
    today = datetime.now(UTC).date()
    await maintenance.partition_upkeep(runtime.db, tracking, today=today)
    parts = await _partitions(runtime)
    for d in range(0, 8):
        assert f"user_events_{today + timedelta(days=d):%Y%m%d}" in parts
    # when upkeep reaches that day, the event moves into the new partition
    await maintenance.partition_upkeep(runtime.db, tracking, today=date(2031, 6, 30))
    stored = await runtime.db.fetch_all(
        "SELECT tableoid::regclass::text AS part FROM analytics.user_events WHERE message_id = %s",
        (far_row.message_id,),
    )
    assert [r["part"] for r in stored] == ["analytics.user_events_20310701"]


async def test_retention_drops_old_partitions_and_applies_per_type_overrides(
    runtime: Runtime,
) -> None:
    tracking = TrackingSettings(event_retention_days=365, event_retention_overrides={"search": 30})
    now = datetime.now(UTC)
    ancient = (now - timedelta(days=400)).date()
    async with runtime.db.transaction() as conn:
        await conn.execute("SELECT analytics.ensure_event_partitions(%s, %s)", (ancient, ancient))
    marker = "ret-" + uuid.uuid4().hex
    await _write(runtime, [
        _row("vote", datetime.combine(ancient, datetime.min.time(), UTC) + timedelta(hours=3),
             anon=marker),
        _row("search", now - timedelta(days=40), anon=marker),
        _row("vote", now - timedelta(days=40), anon=marker),
        _row("search", now - timedelta(days=2), anon=marker),
        _row("vote", now - timedelta(days=800), anon=marker),  # default partition
    ])  # fmt: skip
    assert f"user_events_{ancient:%Y%m%d}" in await _partitions(runtime)
    run = await maintenance.partition_upkeep(runtime.db, tracking)
    assert f"user_events_{ancient:%Y%m%d}" not in await _partitions(runtime)
    assert f"user_events_{ancient:%Y%m%d}" in run.details["dropped"]
    left = await runtime.db.fetch_all(
        "SELECT event_type, created_at FROM analytics.user_events WHERE anonymous_id = %s"
        " ORDER BY created_at",
        (marker,),
    )
    kept: list[tuple[Any, int]] = [(r["event_type"], (now - r["created_at"]).days) for r in left]
    assert kept == [("vote", 40), ("search", 2)]
    last = await runtime.db.fetch_one(
        "SELECT status, details FROM analytics.job_runs"
        " WHERE task = 'tracking.partition_upkeep' ORDER BY id DESC LIMIT 1"
    )
    assert last is not None
    assert last["status"] == "succeeded"
    assert last["details"]["deleted_by_type"]["search"] >= 1


async def _insert_aged(runtime: Runtime, kind: str, age_days: int, received_days_ago: int) -> None:
    async with runtime.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO analytics.user_events (message_id, event_type, created_at, received_at)"
            " VALUES (%s, %s, now() - make_interval(days => %s),"
            " now() - make_interval(days => %s))",
            (uuid.uuid4().hex, kind, age_days, received_days_ago),
        )


async def _ages_left(runtime: Runtime, kind: str) -> list[int]:
    rows = await runtime.db.fetch_all(
        "SELECT extract(day FROM now() - created_at)::int AS age FROM analytics.user_events"
        " WHERE event_type = %s ORDER BY created_at",
        (kind,),
    )
    return [int(r["age"]) for r in rows]


async def test_per_type_retention_deletes_late_arrivals_with_old_client_times(
    runtime: Runtime,
) -> None:
    """Per-type retention reads only what became old enough since its last run (a watermark
    per type and age, no (event_type, created_at) index): an event received after that run
    with a client time from long ago still goes in the next run."""
    kind = f"probe_{uuid.uuid4().hex[:8]}"
    tracking = TrackingSettings(event_retention_days=3650, event_retention_overrides={kind: 30})
    await _insert_aged(runtime, kind, age_days=40, received_days_ago=40)
    run = await maintenance.partition_upkeep(runtime.db, tracking)
    assert run.details["deleted_by_type"][kind] == 1
    await _insert_aged(runtime, kind, age_days=900, received_days_ago=0)  # default partition
    await _insert_aged(runtime, kind, age_days=45, received_days_ago=0)
    await _insert_aged(runtime, kind, age_days=5, received_days_ago=0)  # not old enough
    run = await maintenance.partition_upkeep(runtime.db, tracking)
    assert run.details["deleted_by_type"][kind] == 2
    assert await _ages_left(runtime, kind) == [5]
    # A shorter age is a new watermark: its first run reads every partition once.
    await _insert_aged(runtime, kind, age_days=20, received_days_ago=20)
    run = await maintenance.partition_upkeep(
        runtime.db,
        TrackingSettings(event_retention_days=3650, event_retention_overrides={kind: 10}),
    )
    assert run.details["deleted_by_type"][kind] == 1
    assert await _ages_left(runtime, kind) == [5]
