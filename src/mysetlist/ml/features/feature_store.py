"""Filling the feature store (`ml_user_features`, `ml_artist_features`,
`user_recommendation_features`) one as-of day at a time, after the ETL.

A day is built only once the ETL has closed it (its watermark `warehouse.events`
last_full_day), each day in one transaction with this build's own watermark
(`ml.build_features`), so a build interrupted half-way resumes where it stopped. Each
day's SQL deletes and re-inserts that day's rows: rebuilding any day is idempotent, and
since it reads only data up to that day, features for a past cut-off never see the future.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg

from mysetlist.core.db import Database, read_sql_statements
from mysetlist.core.watermarks import advance_watermark, read_watermark

_PACKAGE = "mysetlist.ml.features"
WATERMARK = "ml.build_features"
# The ETL's watermark: its last_full_day is the newest day the warehouse holds in full.
WAREHOUSE_WATERMARK = "warehouse.events"
FEATURE_SQL = {
    "ml_user_features": "user_features.sql",
    "ml_artist_features": "artist_features.sql",
    "user_recommendation_features": "recommendation_features.sql",
}


@dataclass
class BuildResult:
    days: list[date] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FEATURE_SQL, 0))


def _statements(sql_file: str) -> tuple[str, ...]:
    return read_sql_statements(_PACKAGE, sql_file)


async def build_day(conn: psycopg.AsyncConnection[Any], day: date) -> dict[str, int]:
    """Rebuild every feature table's rows as of `day` in the caller's transaction."""
    rows = {}
    for statement in _statements("build_day_session.sql"):
        await conn.execute(statement)
    for table, sql_file in FEATURE_SQL.items():
        inserted = 0
        for statement in _statements(sql_file):  # DELETE the day's rows, then INSERT them
            cur = await conn.execute(statement, {"day": day})
            inserted = max(cur.rowcount, 0)
        rows[table] = inserted
    return rows


async def days_to_build(
    conn: psycopg.AsyncConnection[Any], *, backfill_days: int, lookback_days: int
) -> list[date]:
    """The days closed by the ETL and not yet built (plus `lookback_days` before them,
    which the ETL may have reloaded); a first build covers the last `backfill_days`."""
    warehouse = await read_watermark(conn, WAREHOUSE_WATERMARK)
    if warehouse is None or warehouse.last_full_day is None:
        return []
    last = warehouse.last_full_day
    built = await read_watermark(conn, WATERMARK)
    if built is not None and built.last_full_day is not None:
        if built.last_full_day >= last:
            return []
        first = built.last_full_day + timedelta(days=1 - lookback_days)
    else:
        first = last - timedelta(days=backfill_days - 1)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


async def build_range(
    db: Database,
    days: list[date],
    *,
    advance: bool = True,
    progress: Callable[[date], None] | None = None,
) -> BuildResult:
    """Build `days` in order, one transaction each; with `advance`, each day's transaction
    also moves the watermark to it."""
    result = BuildResult()
    for day in days:
        async with db.transaction() as conn:
            counts = await build_day(conn, day)
            if advance:
                await advance_watermark(conn, WATERMARK, last_full_day=day)
        result.days.append(day)
        for table, n in counts.items():
            result.rows[table] += n
        if progress is not None:
            progress(day)
    return result


async def build_pending(db: Database, *, backfill_days: int, lookback_days: int) -> BuildResult:
    """Build the days the ETL closed since the last build."""
    async with db.transaction() as conn:
        days = await days_to_build(conn, backfill_days=backfill_days, lookback_days=lookback_days)
    return await build_range(db, days)
