"""Rebuilding the warehouse from scratch: for when the source data was replaced (a new
demo world) rather than appended to, which no incremental or daily run can notice.

Under the run lock, every warehouse table, the loaded-days log and the watermark are
cleared in one transaction; the same lock then runs a `range` run over every day that has
events (within ETL_RETENTION_DAYS) up to today.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from psycopg import sql

from mysetlist.core.db import connect, fetch_one_in
from mysetlist.core.watermarks import reset_watermark
from mysetlist.warehouse import claiming, pipeline
from mysetlist.warehouse.config import EtlConfig
from mysetlist.warehouse.ranges import WATERMARK
from mysetlist.warehouse.run_state import Connection, Progress
from mysetlist.warehouse.sql_files import query
from mysetlist.warehouse.steps import LOADED_DAYS_TABLE, MATERIALIZED_VIEWS, TABLES, qualified

CONTROL_APP = "mysetlist-etl-rebuild"


async def clear_warehouse(conn: Connection) -> None:
    """Empty the warehouse tables and forget what was loaded (one transaction)."""
    # Composed from the table lists (steps.py), so no .sql file.
    tables = sql.SQL(", ").join(qualified(t) for t in (*TABLES, LOADED_DAYS_TABLE))
    async with conn.transaction():
        await conn.execute(sql.SQL("TRUNCATE {}").format(tables))
        await reset_watermark(conn, WATERMARK)


async def first_event_day(database_url: str, config: EtlConfig) -> date | None:
    """The day of the oldest event still within retention, None without events."""
    conn = await connect(database_url, application_name=CONTROL_APP, autocommit=True)
    try:
        row = await fetch_one_in(
            conn,
            query("first_event_day"),
            {"since": datetime.now(UTC) - timedelta(days=config.retention_days)},
        )
    finally:
        await conn.close()
    day: date | None = row["day"] if row else None
    return day


async def rebuild_warehouse(
    database_url: str,
    config: EtlConfig,
    *,
    progress: Progress | None = None,
    wait_for_lock_s: float = 60.0,
) -> pipeline.RunResult | None:
    """Clear the warehouse and load every day with events again. Returns the run (None
    when there are no events: the warehouse is left empty). Raises EtlBusy when another
    run keeps the lock past `wait_for_lock_s`."""
    first = await first_event_day(database_url, config)
    if first is None:
        conn = await connect(database_url, application_name=CONTROL_APP, autocommit=True)
        try:
            async with claiming.run_lock(conn, run_id=None, wait_for_lock_s=wait_for_lock_s):
                await clear_warehouse(conn)
                for view in MATERIALIZED_VIEWS:
                    await conn.execute(
                        sql.SQL("REFRESH MATERIALIZED VIEW {}").format(qualified(view))
                    )
        finally:
            await conn.close()
        return None
    request = pipeline.RunRequest(
        trigger="cli", mode="range", from_day=first, to_day=datetime.now(UTC).date()
    )
    return await pipeline.execute(
        database_url,
        config,
        request=request,
        progress=progress,
        wait_for_lock_s=wait_for_lock_s,
        prepare=clear_warehouse,
    )
