"""The group-commit writer: one bad request in a combined flush fails alone (4xx) while the
others in that flush commit; stopping the writer commits what it accepted before."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from mysetlist.core.runtime import Runtime
from mysetlist.tracking.events import EventRow
from mysetlist.tracking.group_commit import APP_NAME, GroupCommitWriter, Rejected, Unavailable
from tests.tracking.conftest import count_events

pytestmark = pytest.mark.db


async def _until(condition: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def _writer_waits_on_a_lock(runtime: Runtime) -> bool:
    row = await runtime.db.fetch_one(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = %s"
        " AND datname = current_database() AND wait_event_type = 'Lock'",
        (APP_NAME,),
    )
    return row is not None and row["n"] >= 1


async def _queued(expected: int) -> bool:
    """The writer's queue holds `expected` events (its Prometheus gauge)."""
    return REGISTRY.get_sample_value("mysetlist_group_commit_queue_events") == expected


async def _block_writes(database_url: str) -> psycopg.AsyncConnection[Any]:
    """A transaction holding the dedup table, so the writer's next flush waits on it."""
    blocker = await psycopg.AsyncConnection.connect(database_url)
    await blocker.execute("LOCK TABLE analytics.event_dedup IN EXCLUSIVE MODE")
    return blocker


@pytest.mark.parametrize("good_rows", [1, 100], ids=["one-statement", "copy"])
async def test_a_bad_request_in_a_combined_flush_fails_alone(
    database_url: str, runtime: Runtime, good_rows: int
) -> None:
    good, bad = "gc-good-" + uuid.uuid4().hex, "gc-bad-" + uuid.uuid4().hex
    writer = GroupCommitWriter(database_url, connections=1)
    await writer.start()
    try:
        blocker = await _block_writes(database_url)
        first = asyncio.create_task(writer.submit([_row(good)]))  # the flush that waits
        await _until(lambda: _writer_waits_on_a_lock(runtime))
        # these three wait together and go in one flush once the lock is released; the
        # database refuses the middle one (validation would have; the writer must not rely
        # on it): properties that are not JSON
        batch = [_row(good) for _ in range(good_rows)]
        together = asyncio.create_task(writer.submit(batch))
        refused = asyncio.create_task(writer.submit([_row(bad, properties="{not json")]))
        after = asyncio.create_task(writer.submit([_row(good)]))
        await _until(lambda: _queued(good_rows + 2))
        await blocker.rollback()
        await blocker.close()
        assert await asyncio.gather(first, together, after) == [1, good_rows, 1]
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
    await _until(lambda: _writer_waits_on_a_lock(runtime))
    waiting = [
        asyncio.create_task(writer.submit([_row(marker) for _ in range(3)])) for _ in range(2)
    ]
    await _until(lambda: _queued(6))
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
