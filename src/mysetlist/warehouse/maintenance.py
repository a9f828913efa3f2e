"""Warehouse maintenance, run by the daily ETL (step `maintenance`):

- partition upkeep: monthly partitions of `daily_platform_metrics` from the oldest kept
  month to two months ahead, rows parked in the default partition moved in
  (`core.partitions`, the same upkeep as the event table's daily partitions);
- retention cleanup: day-grained warehouse rows older than ETL_RETENTION_DAYS are deleted
  in batches of ANALYTICS_BATCH_SIZE rows (short transactions, no long locks), whole
  expired monthly partitions are dropped;
- index health: a bloat estimate for every btree index on the warehouse tables (actual
  size against the size its rows should need at the default fill factor); indexes over
  ETL_REINDEX_BLOAT_RATIO and ETL_REINDEX_MIN_BYTES are rebuilt with
  `REINDEX INDEX CONCURRENTLY` — which cannot run inside a transaction block, so this
  runs on an autocommit connection outside any transaction.

Returns a report (stored in `etl_runs.maintenance`).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from psycopg import AsyncConnection, sql

from mysetlist.core.db import fetch_all_in, read_sql
from mysetlist.core.partitions import PartitionedTable, drop_expired, ensure_partitions
from mysetlist.warehouse.config import EtlConfig
from mysetlist.warehouse.steps import (
    DAY_GRAINED_TABLES,
    MATERIALIZED_VIEWS,
    PARTITIONED_TABLE,
    TABLES,
    qualified,
)

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.warehouse"

# Rows of these are deleted past retention; the partitioned table loses whole partitions.
DAY_TABLES = tuple(t for t in DAY_GRAINED_TABLES if t != PARTITIONED_TABLE)
# Index health covers every table and materialized view of the warehouse.
WAREHOUSE_TABLES = (*TABLES, *MATERIALIZED_VIEWS)
DAILY_PLATFORM_METRICS = PartitionedTable(
    schema="analytics", name=PARTITIONED_TABLE, key="day", grain="month", key_type="date"
)
# Partitions are made this far back at most (a long retention need not create years of
# empty months) and this far ahead.
_PARTITIONS_BACK = timedelta(days=400)
_PARTITIONS_AHEAD = timedelta(days=62)

Connection = AsyncConnection[Any]


async def run(conn: Connection, config: EtlConfig, *, today: date) -> dict[str, Any]:
    """Run every maintenance task on `conn` (autocommit, not in a transaction)."""
    report: dict[str, Any] = {}
    report["partitions"] = await partition_upkeep(conn, config, today)
    report["retention"] = await retention_cleanup(conn, config, today)
    report["indexes"] = await index_health(conn, config)
    return report


async def partition_upkeep(conn: Connection, config: EtlConfig, today: date) -> dict[str, Any]:
    oldest = today - timedelta(days=config.retention_days)
    created = await ensure_partitions(
        conn,
        DAILY_PLATFORM_METRICS,
        max(oldest, today - _PARTITIONS_BACK),
        today + _PARTITIONS_AHEAD,
    )
    return {"created": len(created)}


async def retention_cleanup(conn: Connection, config: EtlConfig, today: date) -> dict[str, Any]:
    cutoff = today - timedelta(days=config.retention_days)
    deleted: dict[str, int] = {}
    for table in DAY_TABLES:
        query = sql.SQL(read_sql(_PACKAGE, "maintenance_delete_expired_day_rows.sql")).format(
            table=qualified(table)
        )
        total = 0
        while True:
            cur = await conn.execute(query, {"cutoff": cutoff, "batch": config.batch_size})
            n = cur.rowcount or 0
            total += n
            if n < config.batch_size:
                break
        deleted[table] = total
    # Whole monthly partitions of daily_platform_metrics past the cutoff are dropped, the
    # expired days of the month straddling it deleted.
    expired = await drop_expired(conn, DAILY_PLATFORM_METRICS, cutoff)
    deleted[PARTITIONED_TABLE] = expired.rows_deleted
    for name, file in (
        ("etl_loaded_days", "maintenance_delete_expired_loaded_days.sql"),
        ("etl_runs", "maintenance_delete_old_etl_runs.sql"),
    ):
        cur = await conn.execute(read_sql(_PACKAGE, file), {"cutoff": cutoff})
        deleted[name] = cur.rowcount or 0
    return {
        "cutoff": cutoff.isoformat(),
        "deleted_rows": deleted,
        "dropped_partitions": expired.dropped,
    }


async def index_health(conn: Connection, config: EtlConfig) -> list[dict[str, Any]]:
    rows = await fetch_all_in(
        conn,
        read_sql(_PACKAGE, "maintenance_index_health.sql"),
        {"tables": list(WAREHOUSE_TABLES)},
    )
    report = []
    for r in rows:
        actual, expected = int(r["bytes"]), int(r["expected_bytes"])
        ratio = max(0.0, 1 - expected / actual) if actual else 0.0
        entry: dict[str, Any] = {
            "index": r["index_name"],
            "table": r["table_name"],
            "bytes": actual,
            "expected_bytes": expected,
            "bloat_ratio": round(ratio, 3),
            "reindexed": False,
        }
        if ratio > config.reindex_bloat_ratio and actual >= config.reindex_min_bytes:
            reindex = sql.SQL(read_sql(_PACKAGE, "maintenance_reindex.sql"))
            await conn.execute(reindex.format(index=qualified(r["index_name"])))
            entry["reindexed"] = True
            entry["bytes_after"] = await _size(conn, r["index_name"])
            log.info("reindexed analytics.%s (bloat %.0f%%)", r["index_name"], ratio * 100)
        report.append(entry)
    return report


async def _size(conn: Connection, index: str) -> int:
    rows = await fetch_all_in(
        conn, read_sql(_PACKAGE, "maintenance_index_size.sql"), {"index": index}
    )
    return int(rows[0]["bytes"]) if rows else 0
