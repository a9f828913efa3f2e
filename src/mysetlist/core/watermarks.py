"""Watermarks: how far an incremental activity got (`analytics.watermarks`), one row per name.

A watermark has a `position` (a point in time processed up to, e.g. the last `received_at`
a rollup covered) and/or a `last_full_day` (the last day fully processed), plus the run
that moved it. Both functions work on the caller's connection, inside the caller's
transaction, so the watermark commits together with the rows it describes (never ahead
of them, never behind).

`advance_watermark` never moves a field backwards: a late or concurrent run that
processed less cannot undo another's progress. Rebuilding from scratch is an explicit,
separate act (`reset_watermark`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, sql

from mysetlist.core.db import fetch_all_in, read_sql

_PACKAGE = "mysetlist.core"

# Events are stamped received_at = now() of their flush transaction, which commits a few ms
# later: a watermark over received_at stops this far behind now() so no in-flight flush is
# skipped (tracking's rollup and per-type retention, privacy's anonymisation).
SAFETY_LAG = timedelta(seconds=15)
# Where a time watermark that has never moved starts: before any client time ingest accepts.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Watermark:
    name: str
    position: datetime | None
    last_full_day: date | None
    run_id: int | None
    updated_at: datetime


async def read_watermark(
    conn: AsyncConnection[Any], name: str, *, for_update: bool = False
) -> Watermark | None:
    """The watermark `name`, or None if it never moved. `for_update` locks its row until
    the transaction ends (serialises concurrent runs of the same activity)."""
    query: sql.Composable = sql.SQL(read_sql(_PACKAGE, "watermark_read.sql"))
    if for_update:
        query = query + sql.SQL(" FOR UPDATE")
    rows = await fetch_all_in(conn, query, {"name": name})
    return Watermark(**rows[0]) if rows else None


async def advance_watermark(
    conn: AsyncConnection[Any],
    name: str,
    *,
    position: datetime | None = None,
    last_full_day: date | None = None,
    run_id: int | None = None,
) -> None:
    """Move `name` forward to `position` / `last_full_day` (a field left None is kept)."""
    await conn.execute(
        read_sql(_PACKAGE, "watermark_advance.sql"),
        {"name": name, "position": position, "last_full_day": last_full_day, "run_id": run_id},
    )


async def reset_watermark(conn: AsyncConnection[Any], name: str) -> None:
    """Forget `name` (its activity starts over from the beginning, e.g. a full rebuild)."""
    await conn.execute(read_sql(_PACKAGE, "watermark_reset.sql"), (name,))
