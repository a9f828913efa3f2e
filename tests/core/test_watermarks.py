"""Watermarks only move forward and commit with the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.core.watermarks import advance_watermark, read_watermark, reset_watermark

pytestmark = pytest.mark.db


async def test_watermark_never_moves_backwards(runtime: Runtime) -> None:
    name = f"tests.{uuid.uuid4().hex[:8]}"
    t1 = datetime(2026, 3, 1, 12, tzinfo=UTC)
    async with runtime.db.transaction() as conn:
        assert await read_watermark(conn, name) is None
        await advance_watermark(conn, name, position=t1, run_id=1)
    async with runtime.db.transaction() as conn:
        # an older position, an older-than-nothing day: the position stays, the day is set
        await advance_watermark(
            conn, name, position=t1 - timedelta(hours=1), last_full_day=date(2026, 2, 28)
        )
        mark = await read_watermark(conn, name)
    assert mark is not None
    assert (mark.position, mark.last_full_day, mark.run_id) == (t1, date(2026, 2, 28), 1)
    async with runtime.db.transaction() as conn:
        await advance_watermark(conn, name, last_full_day=date(2026, 2, 1), run_id=2)
        await advance_watermark(conn, name, position=t1 + timedelta(minutes=5))
        mark = await read_watermark(conn, name, for_update=True)
    assert mark is not None
    assert mark.position == t1 + timedelta(minutes=5)
    assert mark.last_full_day == date(2026, 2, 28)  # not moved back to Feb 1
    assert mark.run_id == 2


async def test_watermark_rolls_back_with_the_callers_transaction(runtime: Runtime) -> None:
    name = f"tests.{uuid.uuid4().hex[:8]}"
    at = datetime(2026, 3, 1, tzinfo=UTC)
    async with runtime.db.pool.connection() as conn:
        async with conn.transaction(force_rollback=True):
            await advance_watermark(conn, name, position=at)
        assert await read_watermark(conn, name) is None
        await conn.rollback()
    async with runtime.db.transaction() as conn:
        await advance_watermark(conn, name, position=at)
        await reset_watermark(conn, name)
        assert await read_watermark(conn, name) is None
