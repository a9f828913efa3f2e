"""The one time-zone validator: a zone is valid only if both Python's zoneinfo and
PostgreSQL know it (issue 15: `localtime` is a zone to Python, and SQL with
`AT TIME ZONE 'localtime'` fails). Every input that takes a zone checks it here.

PostgreSQL's list is read once per process (`load_time_zones`); Python's side is checked
per zone when one is first asked about and remembered (checking all ~600 zones up front
cost each process ~60 ms of CPU in its first send or drain). The check is then a set lookup
and a cached call, cheap enough for the delivery drain. A zone already stored
before this check existed, or written around it, is read through `zone_or_utc`: the
user's time then counts as UTC instead of failing the work that reads it.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import TYPE_CHECKING, TypeGuard
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request

from mysetlist.core.db import read_sql

if TYPE_CHECKING:
    from mysetlist.core.db import Database

_known: frozenset[str] | None = None  # PostgreSQL's zone names, once loaded
# What `zoneinfo.available_timezones()` leaves out of the zone files it finds: the
# directories of alternative copies and a link-only file.
_NOT_ZONES = ("posix/", "right/")


@cache
def _python_knows(name: str) -> bool:
    """Whether Python's zoneinfo lists and loads `name` (asked only of names PostgreSQL
    knows, so the cache holds at most its ~1,200)."""
    if name.startswith(_NOT_ZONES) or name == "posixrules":
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _both_know(name: object) -> TypeGuard[str]:
    return _known is not None and isinstance(name, str) and name in _known and _python_knows(name)


_loading: asyncio.Lock | None = None


async def load_time_zones(db: Database) -> None:
    """PostgreSQL's zone names, asked once per process (Python's side is checked per zone,
    on use). Concurrent first callers (a worker's drain jobs, the first sends) wait for
    one query instead of each sending it."""
    global _known, _loading
    if _known is not None:
        return
    if _loading is None:
        _loading = asyncio.Lock()
    async with _loading:
        if _known is None:
            rows = await db.fetch_all(read_sql("mysetlist.core", "time_zone_names.sql"))
            _known = frozenset(r["name"] for r in rows)


def is_time_zone(name: object) -> bool:
    """Whether `name` is a zone both Python and PostgreSQL know. Fails closed: before
    `load_time_zones` ran in this process, only "UTC" (which both always know) passes."""
    return name == "UTC" or _both_know(name)


def zone_or_utc(name: object) -> str:
    """`name` when valid, else "UTC": for zones read from storage, never for input. The
    list must be loaded (a RuntimeError otherwise: a forgotten load must not quietly
    move every fan to UTC)."""
    if name == "UTC":
        return "UTC"
    if _known is None:
        raise RuntimeError("time zones not loaded: await load_time_zones(db) first")
    return name if _both_know(name) else "UTC"


async def time_zones_loaded(request: Request) -> None:
    """A route dependency for routers whose (sync) code checks zones: the list is loaded."""
    await load_time_zones(request.app.state.runtime.db)
