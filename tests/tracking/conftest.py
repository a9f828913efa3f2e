"""Helpers for the tracking tests."""

from __future__ import annotations

from typing import Any

from mysetlist.core.runtime import Runtime
from mysetlist.tracking.group_commit import APP_NAME


async def count_events(runtime: Runtime, where: str = "TRUE", params: Any = None) -> int:
    async with runtime.db.transaction() as conn:
        cur = await conn.execute(
            f"SELECT count(*) FROM analytics.user_events WHERE {where}", params
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def writer_waits_on_a_lock(runtime: Runtime) -> bool:
    """The group-commit writer's session is blocked on a lock (a test holds it)."""
    row = await runtime.db.fetch_one(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = %s"
        " AND datname = current_database() AND wait_event_type = 'Lock'",
        (APP_NAME,),
    )
    return row is not None and row["n"] >= 1
