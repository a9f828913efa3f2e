"""The one time-zone validator: a zone is valid only if both Python's zoneinfo and
PostgreSQL know it (issue 15: `localtime` is a zone to Python, and SQL with
`AT TIME ZONE 'localtime'` fails). Every input that takes a zone checks it here.

PostgreSQL's list is read once per process (`load_time_zones`); afterwards the check is a
set lookup (`is_time_zone`), cheap enough for the delivery drain. A zone already stored
before this check existed, or written around it, is read through `zone_or_utc`: the
user's time then counts as UTC instead of failing the work that reads it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from fastapi import Request

from mysetlist.core.db import read_sql

if TYPE_CHECKING:
    from mysetlist.core.db import Database

_known: frozenset[str] | None = None


def _python_knows(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_loading: asyncio.Lock | None = None


async def load_time_zones(db: Database) -> frozenset[str]:
    """The zone names both sides know; PostgreSQL is asked once per process. Concurrent
    first callers (a worker's drain jobs, the first sends) wait for one load instead of
    each reading every zone file (~50 ms of CPU each, all at once at the first burst)."""
    global _known, _loading
    if _known is not None:
        return _known
    if _loading is None:
        _loading = asyncio.Lock()
    async with _loading:
        if _known is None:
            rows = await db.fetch_all(read_sql("mysetlist.core", "time_zone_names.sql"))
            python = available_timezones() | {"UTC"}
            _known = frozenset(
                r["name"] for r in rows if r["name"] in python and _python_knows(r["name"])
            )
    return _known


def is_time_zone(name: object) -> bool:
    """Whether `name` is a zone both Python and PostgreSQL know. Fails closed: before
    `load_time_zones` ran in this process, only "UTC" (which both always know) passes."""
    if name == "UTC":
        return True
    return _known is not None and isinstance(name, str) and name in _known


def zone_or_utc(name: object) -> str:
    """`name` when valid, else "UTC": for zones read from storage, never for input. The
    list must be loaded (a RuntimeError otherwise: a forgotten load must not quietly
    move every fan to UTC)."""
    if name == "UTC":
        return "UTC"
    if _known is None:
        raise RuntimeError("time zones not loaded: await load_time_zones(db) first")
    return name if isinstance(name, str) and name in _known else "UTC"


async def time_zones_loaded(request: Request) -> None:
    """A route dependency for routers whose (sync) code checks zones: the list is loaded."""
    await load_time_zones(request.app.state.runtime.db)
