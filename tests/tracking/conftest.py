"""Helpers for the tracking tests."""

from __future__ import annotations

from typing import Any

from mysetlist.core.runtime import Runtime


async def count_events(runtime: Runtime, where: str = "TRUE", params: Any = None) -> int:
    async with runtime.db.transaction() as conn:
        cur = await conn.execute(
            f"SELECT count(*) FROM analytics.user_events WHERE {where}", params
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])
