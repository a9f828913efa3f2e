"""The group-commit writer: one bad request in a combined flush fails alone (4xx) while the
others in that flush commit; stopping the writer commits what it accepted before."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from mysetlist.core.runtime import Runtime
from mysetlist.tracking.events import EventRow
from mysetlist.tracking.group_commit import (
    SMALL_FLUSH,
    ArrayEncoder,
    GroupCommitWriter,
    Rejected,
    Unavailable,
)
from tests.conditions import until
from tests.tracking.conftest import count_events, writer_waits_on_a_lock

pytestmark = pytest.mark.db


async def _queued(expected: int) -> bool:
    """The writer's queue holds `expected` events (its Prometheus gauge)."""
    return REGISTRY.get_sample_value("mysetlist_group_commit_queue_events") == expected


async def _block_writes(database_url: str) -> psycopg.AsyncConnection[Any]:
    """A transaction holding the dedup table, so the writer's next flush waits on it."""
    blocker = await psycopg.AsyncConnection.connect(database_url)
    await blocker.execute("LOCK TABLE analytics.event_dedup IN EXCLUSIVE MODE")
    return blocker


@pytest.mark.parametrize("good_rows", [1, SMALL_FLUSH], ids=["one-statement", "copy"])
async def test_a_bad_request_in_a_combined_flush_fails_alone(
    database_url: str, runtime: Runtime, good_rows: int
) -> None:
    good, bad = "gc-good-" + uuid.uuid4().hex, "gc-bad-" + uuid.uuid4().hex
    writer = GroupCommitWriter(database_url, connections=1)
    await writer.start()
    try:
        blocker = await _block_writes(database_url)
        first = asyncio.create_task(writer.submit([_row(good)]))  # the flush that waits
        await until(lambda: writer_waits_on_a_lock(runtime), "the writer to wait on the lock")
        # these three wait together and go in one flush once the lock is released; the
        # database refuses the middle one (validation would have; the writer must not rely
        # on it): properties that are not JSON
        batch = [_row(good) for _ in range(good_rows)]
        together = asyncio.create_task(writer.submit(batch))
        refused = asyncio.create_task(writer.submit([_row(bad, properties="{not json")]))
        after = asyncio.create_task(writer.submit([_row(good)]))
        await until(lambda: _queued(good_rows + 2), "every request of the flush queued")
        await blocker.rollback()
        await blocker.close()
        assert list(await asyncio.gather(first, together, after)) == [1, good_rows, 1]
        with pytest.raises(Rejected, match="json"):  # a client error (400), not a 503
            await refused
    finally:
        await writer.stop()
    assert await count_events(runtime, "anonymous_id = %s", (good,)) == good_rows + 2
    assert await count_events(runtime, "anonymous_id = %s", (bad,)) == 0


def _row(marker: str, properties: str = "{}") -> EventRow:
    return EventRow(
        message_id=uuid.uuid4().hex, user_id=None, anonymous_id=marker, session_id=None,
        event_type="search", page_url=None, properties=properties, source="api",
        created_at=datetime.now(UTC),
    )  # fmt: skip


async def test_stop_commits_what_was_accepted_before_it(
    database_url: str, runtime: Runtime
) -> None:
    marker = "drain-" + uuid.uuid4().hex
    writer = GroupCommitWriter(database_url, connections=1)
    await writer.start()
    blocker = await _block_writes(database_url)
    first = asyncio.create_task(writer.submit([_row(marker)]))
    await until(lambda: writer_waits_on_a_lock(runtime), "the writer to wait on the lock")
    waiting = [
        asyncio.create_task(writer.submit([_row(marker) for _ in range(3)])) for _ in range(2)
    ]
    await until(lambda: _queued(6), "6 events queued")
    stopping = asyncio.create_task(writer.stop(grace=60))
    await asyncio.sleep(0)  # a turn of the loop: stop() has begun (no waiting on time)
    with pytest.raises(Unavailable):  # it takes nothing new
        await writer.submit([_row(marker)])
    assert not stopping.done()  # stop waits for what it accepted
    await blocker.rollback()
    await blocker.close()
    await stopping
    assert await asyncio.gather(first, *waiting) == [1, 3, 3]
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 7


def _odd_rows() -> list[EventRow]:
    """Rows with every column's edge: NULLs, empty and non-ASCII text, a claimed user, a
    sender, proofs set, times with microseconds and before 2000."""
    return [
        EventRow(
            message_id=uuid.uuid4().hex,
            user_id=uuid.uuid4(),
            anonymous_id="",
            session_id="sé",
            event_type="search",
            page_url="https://x/ü?q=\"'\\",
            properties='{"a": "é"}',
            source="api",
            created_at=datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            claimed_user_id=uuid.uuid4(),
            sender=b"\x00\xff" * 8,
            proves_anonymous=True,
        ),
        EventRow(
            message_id="m-" + uuid.uuid4().hex,
            user_id=None,
            anonymous_id=None,
            session_id=None,
            event_type="page_view",
            page_url=None,
            properties="{}",
            source="segment",
            created_at=datetime.now(UTC),
            proves_session=True,
        ),
    ]


async def test_the_array_encoder_sends_what_psycopg_would(database_url: str) -> None:
    """A small flush's arrays are built by `ArrayEncoder`, not psycopg's list dumper: the
    bytes must be the ones psycopg sends for the same lists, and the types the same."""
    from psycopg.adapt import PyFormat, Transformer

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = _odd_rows()
        ours = ArrayEncoder(conn).params(rows)
        tx = Transformer(conn)
        for name, column in zip(EventRow._fields, zip(*rows, strict=True), strict=True):
            values = list(column)
            dumper = tx.get_dumper(values, PyFormat.BINARY)
            theirs = dumper.upgrade(values, PyFormat.BINARY)
            assert bytes(ours[name]) == theirs.dump(values), name
            assert type(ours[name]).oid == theirs.oid, name


async def test_a_small_flush_stores_every_column_as_sent(
    database_url: str, runtime: Runtime
) -> None:
    writer = GroupCommitWriter(database_url, connections=1)
    await writer.start()
    try:
        rows = _odd_rows()
        assert await writer.submit(rows) == 2
    finally:
        await writer.stop()
    async with runtime.db.transaction() as conn:
        cur = await conn.execute(
            "SELECT message_id, user_id, anonymous_id, session_id, event_type, page_url,"
            " properties::text, source, created_at, claimed_user_id FROM analytics.user_events"
            " WHERE message_id = ANY(%s) ORDER BY created_at",
            ([r.message_id for r in rows],),
        )
        stored = await cur.fetchall()
    assert [tuple(r) for r in stored] == [r[:10] for r in rows]
