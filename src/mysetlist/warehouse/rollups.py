"""The steps after the day stage that write tables: the rollups (voting accuracy, user
behaviour, trending, the WAU/MAU windows), the materialized views and ANALYZE.

Each rollup runs in its own transaction on a work connection. User-level rollups take the
run's scope (`etl_scope`): the users active in the range, or for incremental runs the
users with new events or votes.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from psycopg import sql

from mysetlist.core.db import fetch_one_in, read_sql
from mysetlist.warehouse.run_state import Connection, RunState
from mysetlist.warehouse.sql_files import query, run_statements, statements, writes_rows
from mysetlist.warehouse.steps import MATERIALIZED_VIEWS, STEP_TABLES, qualified

_PACKAGE = "mysetlist.warehouse"

# How far a step's windows reach forward from a reloaded day: the later days whose
# values read it (MAU: 30 days; trending: 7 recent days over a 28-day baseline).
WINDOW_REACH_DAYS = {"platform_windows": 29, "trending": 34}


async def _fill_scope(state: RunState, conn: Connection) -> None:
    """etl_scope(kind, id, user_id): the users whose entity-level rows this run
    recomputes."""
    await conn.execute(query("rollup_scope_create"))
    rng = state.day_range()
    if rng is None:
        return
    name = "rollup_scope_incremental" if state.incremental else "rollup_scope"
    for statement in run_statements(name):
        await conn.execute(statement, {"lo": rng[0], "hi": rng[1]})


async def _last_loaded_day(conn: Connection) -> date | None:
    row = await fetch_one_in(conn, query("last_loaded_day"))
    day: date | None = row["day"] if row else None
    return day


async def rollup(state: RunState, step: str, conn: Connection) -> None:
    rng = state.day_range()
    if rng is None:
        return
    lo, hi = rng
    timing = state.timing(step)
    async with conn.transaction():
        params: dict[str, Any]
        if step in WINDOW_REACH_DAYS:
            # Windows reach forward from the reloaded days up to the last loaded day.
            last = await _last_loaded_day(conn)
            if last is None or last < lo:
                return
            params = {"lo": lo, "hi": min(hi + timedelta(days=WINDOW_REACH_DAYS[step]), last)}
            if (
                step == "platform_windows"
                and state.incremental
                and lo == hi == last
                and "user_behavior_warehouse" in state.steps
            ):
                step, params = "platform_windows_latest", {"day": last}
        else:
            await _fill_scope(state, conn)
            params = {"full": state.voting_full}
        for stmt in statements(step):
            cur = await conn.execute(stmt, params)
            if writes_rows(stmt):
                timing.rows += max(cur.rowcount or 0, 0)
                state.rows_written += max(cur.rowcount or 0, 0)


async def refresh_views(state: RunState, conn: Connection) -> None:
    for view in MATERIALIZED_VIEWS:
        refresh = sql.SQL(read_sql(_PACKAGE, "refresh_view.sql"))
        await conn.execute(refresh.format(view=qualified(view)))
        row = await fetch_one_in(
            conn, sql.SQL(read_sql(_PACKAGE, "view_rows.sql")).format(view=qualified(view))
        )
        state.timing("refresh_views").rows += int(row["n"]) if row else 0


async def analyze(state: RunState, conn: Connection) -> None:
    """ANALYZE the tables the run's steps wrote."""
    tables: list[str] = []
    for step in state.steps:
        for table in STEP_TABLES.get(step, ()):
            if table not in tables:
                tables.append(table)
    for table in tables:
        analyze_table = sql.SQL(read_sql(_PACKAGE, "analyze_table.sql"))
        await conn.execute(analyze_table.format(table=qualified(table)))
    state.timing("analyze").rows += len(tables)
