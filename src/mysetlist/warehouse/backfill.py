"""A first backfill: a daily or range run that finds the day-grained tables it loads empty
(a rebuild's run, the first load of an install, the ETL bench) loads them without their
indexes and builds those after the day stage, before the rollups read them.

Every row is then a heap append: kept up one by one, a primary key on (user_id, day) puts
each insert on a random leaf page of an index far larger than shared_buffers, and after
each checkpoint that page's first change writes a full-page image to the WAL (a late day
of the 8.5 M-event world: 45 MB of WAL for 24k rows per table). Built once from a sort,
the index costs a fraction of that. Nothing is deleted either (`fresh`: nothing to delete).

The `day` indexes of daily_user_stats and user_engagement_warehouse stay: the day's
platform metrics read the day back by them (and they are appends, cheap to keep up).

Crash safety: the indexes' definitions are recorded (analytics.etl_deferred_indexes) in
the transaction that drops them, and every run builds whatever is recorded before it loads
a day, one transaction per table (its indexes and the record's deletion commit together).
Concurrency: the run lock is held throughout; the tables were empty, so a reader misses
nothing but speed, and only until the day stage ends. Uniqueness, unchecked meanwhile, is
checked when the primary keys are built: every day is loaded once, by one transaction,
from rows grouped by the key; a duplicate would fail that build (and the run) loudly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import psycopg
from psycopg import sql

from mysetlist.core.db import Row, fetch_all_in
from mysetlist.warehouse.errors import most_telling
from mysetlist.warehouse.run_state import Connection, RunState
from mysetlist.warehouse.sql_files import query, run_statements
from mysetlist.warehouse.steps import DAY_STEPS, PARTITIONED_TABLE, STEP_TABLES, qualified

log = logging.getLogger(__name__)

# Read by the day stage itself (daily_platform_metrics.sql): kept during a backfill.
KEPT_INDEXES = ("daily_user_stats_day_idx", "user_engagement_warehouse_day_idx")


def backfill_tables(day_steps: Sequence[str]) -> list[str]:
    """The tables whose indexes a first backfill of these day steps defers (the
    partitioned one holds a row a day: nothing to gain)."""
    tables = [t for s in day_steps for t in STEP_TABLES.get(s, ()) if t != PARTITIONED_TABLE]
    return list(dict.fromkeys(tables))


async def defer_indexes(state: RunState, conn: Connection, day_steps: Sequence[str]) -> bool:
    """When every table the day steps load is empty, drop their indexes (but KEPT_INDEXES)
    and record them, in one transaction; True when the run is a first backfill. A table
    another session holds at that moment, or a role that does not own the tables, means
    no backfill: the run loads as usual."""
    tables = backfill_tables(day_steps)
    if state.incremental or not tables or not state.days:
        return False
    names = sql.SQL(", ").join(qualified(t) for t in tables)
    try:
        async with conn.transaction():
            # Nobody writes or reads them between the check and the drops.
            await conn.execute(_template("backfill_lock", tables=names))
            for table in tables:
                cur = await conn.execute(_template("backfill_any_row", table=qualified(table)))
                if await cur.fetchone() is not None:
                    return False
            pin, candidates = run_statements("backfill_candidates")
            await conn.execute(pin)
            found = await fetch_all_in(
                conn, candidates, {"tables": tables, "keep": list(KEPT_INDEXES)}
            )
            for index in found:
                await conn.execute(query("backfill_record"), {**index, "run_id": state.run_id})
                await conn.execute(_drop(index))
    except (psycopg.errors.LockNotAvailable, psycopg.errors.InsufficientPrivilege) as exc:
        # Busy tables, or a role that may write the tables but not alter them.
        log.info("ETL run %s: loading with the indexes (%s)", state.run_id, type(exc).__name__)
        return False
    log.info("ETL run %s: first backfill, %d indexes built after it", state.run_id, len(found))
    return True


def _template(name: str, **parts: sql.Composable) -> sql.Composed:
    return sql.SQL(query(name)).format(**parts)


def _drop(index: Row) -> sql.Composed:
    if index["constraint_name"]:
        return _template(
            "backfill_drop_constraint",
            table=qualified(index["table_name"]),
            constraint=sql.Identifier(index["constraint_name"]),
        )
    return _template("backfill_drop_index", index=qualified(index["index_name"]))


async def build_deferred_indexes(work: Sequence[Connection]) -> dict[str, float]:
    """Build every recorded index that a first backfill dropped, one table per connection
    and transaction, side by side; returns the milliseconds each table took. A no-op (one
    small read) when nothing is recorded."""
    recorded = await fetch_all_in(work[0], query("backfill_deferred"))
    by_table: dict[str, list[Row]] = {}
    for index in recorded:
        by_table.setdefault(index["table_name"], []).append(index)
    pending = list(by_table.items())
    took: dict[str, float] = {}

    async def worker(conn: Connection) -> None:
        while pending:
            table, indexes = pending.pop(0)
            t0 = time.perf_counter()
            async with conn.transaction():
                for index in indexes:
                    if not index["index_exists"]:
                        await conn.execute(index["create_index"])
                    if index["constraint_name"] and not index["constraint_exists"]:
                        await conn.execute(_add_constraint(index))
                await conn.execute(query("backfill_built"), {"table_name": table})
            took[table] = (time.perf_counter() - t0) * 1000

    try:
        async with asyncio.TaskGroup() as group:
            for conn in work[: len(pending)]:
                group.create_task(worker(conn))
    except BaseExceptionGroup as eg:
        raise most_telling(eg) from None
    return took


def step_of(table: str) -> str:
    """The day step that loads `table` (its index build counts in that step's time)."""
    return next(s for s in DAY_STEPS if table in STEP_TABLES.get(s, ()))


def _add_constraint(index: Row) -> sql.Composed:
    kinds = {"PRIMARY KEY": sql.SQL("PRIMARY KEY"), "UNIQUE": sql.SQL("UNIQUE")}
    return _template(
        "backfill_add_constraint",
        table=qualified(index["table_name"]),
        constraint=sql.Identifier(index["constraint_name"]),
        kind=kinds[index["constraint_kind"]],
        index=sql.Identifier(index["index_name"]),
    )
