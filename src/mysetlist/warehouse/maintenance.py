"""Warehouse maintenance, run by the daily ETL (step `maintenance`):

- partition upkeep: monthly partitions of `daily_platform_metrics` from the oldest kept
  month to two months ahead (rows parked in the default partition are moved in);
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

from psycopg import sql
from psycopg.rows import dict_row

from mysetlist.warehouse.config import EtlConfig

log = logging.getLogger(__name__)

DAY_TABLES = (
    "daily_user_stats",
    "user_engagement_warehouse",
    "artist_popularity_warehouse",
    "show_engagement_warehouse",
)
WAREHOUSE_TABLES = (
    *DAY_TABLES,
    "user_behavior_warehouse",
    "voting_patterns_warehouse",
    "daily_platform_metrics",
    "cohort_retention_weekly",
    "genre_trends_daily",
)

# Bloat estimate per btree index: expected bytes = rows * (8-byte index tuple header +
# 4-byte line pointer + MAXALIGN'd key width from pg_stats) / 0.9 fill factor, plus one
# page of metadata; bloat_ratio = 1 - expected / actual (0 when actual <= expected).
INDEX_HEALTH_SQL = """
SELECT ic.relname AS index_name, tc.relname AS table_name,
       pg_relation_size(i.indexrelid) AS bytes, greatest(ic.reltuples, 0)::bigint AS est_rows,
       (8192 + greatest(ic.reltuples, 0) * (12 + ceil(coalesce(w.key_width, 8) / 8.0) * 8) / 0.9
       )::bigint AS expected_bytes
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class tc ON tc.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = tc.relnamespace
  JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
  LEFT JOIN LATERAL (
    SELECT sum(coalesce(s.avg_width, 8)) AS key_width
      FROM unnest(i.indkey) AS k(attnum)
      JOIN pg_attribute a ON a.attrelid = tc.oid AND a.attnum = k.attnum
      LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = tc.relname
                          AND s.attname = a.attname
  ) w ON true
 WHERE n.nspname = 'analytics' AND tc.relname = ANY(%s) AND tc.relkind IN ('r', 'm')
 ORDER BY 1
"""


async def run(conn: Any, config: EtlConfig, *, today: date) -> dict[str, Any]:
    """Run every maintenance task on `conn` (autocommit, not in a transaction)."""
    report: dict[str, Any] = {}
    report["partitions"] = await partition_upkeep(conn, config, today)
    report["retention"] = await retention_cleanup(conn, config, today)
    report["indexes"] = await index_health(conn, config)
    return report


async def partition_upkeep(conn: Any, config: EtlConfig, today: date) -> dict[str, Any]:
    oldest = today - timedelta(days=config.retention_days)
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT analytics.ensure_platform_metrics_partitions(%s, %s)",
            (max(oldest, today - timedelta(days=400)), today + timedelta(days=62)),
        )
        row = await cur.fetchone()
    return {"created": int(row[0]) if row else 0}


async def retention_cleanup(conn: Any, config: EtlConfig, today: date) -> dict[str, Any]:
    cutoff = today - timedelta(days=config.retention_days)
    deleted: dict[str, int] = {}
    for table in DAY_TABLES:
        total = 0
        while True:
            cur = await conn.execute(
                sql.SQL(
                    "DELETE FROM analytics.{t} WHERE ctid = ANY(ARRAY("
                    "SELECT ctid FROM analytics.{t} WHERE day < %s LIMIT %s))"
                ).format(t=sql.Identifier(table)),
                (cutoff, config.batch_size),
            )
            n = cur.rowcount or 0
            total += n
            if n < config.batch_size:
                break
        deleted[table] = total
    # Whole monthly partitions of daily_platform_metrics past the cutoff are dropped.
    dropped = []
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT c.relname FROM pg_inherits i
                 JOIN pg_class c ON c.oid = i.inhrelid
                 JOIN pg_class p ON p.oid = i.inhparent
                 JOIN pg_namespace n ON n.oid = p.relnamespace
                WHERE n.nspname = 'analytics' AND p.relname = 'daily_platform_metrics'
                  AND c.relname ~ '^daily_platform_metrics_[0-9]{6}$'"""
        )
        parts = [r["relname"] for r in await cur.fetchall()]
    for part in parts:
        y, m = int(part[-6:-2]), int(part[-2:])
        month_end = date(y + (m == 12), m % 12 + 1, 1)
        if month_end <= cutoff:
            await conn.execute(sql.SQL("DROP TABLE analytics.{}").format(sql.Identifier(part)))
            dropped.append(part)
    cur = await conn.execute(
        "DELETE FROM analytics.daily_platform_metrics WHERE day < %s", (cutoff,)
    )
    deleted["daily_platform_metrics"] = cur.rowcount or 0
    cur = await conn.execute("DELETE FROM analytics.etl_loaded_days WHERE day < %s", (cutoff,))
    deleted["etl_loaded_days"] = cur.rowcount or 0
    # Run history: incremental runs that found nothing new are kept 7 days, the rest
    # (with their checks and audit rows) as long as the warehouse rows.
    cur = await conn.execute(
        """DELETE FROM analytics.etl_runs
            WHERE status NOT IN ('queued', 'running')
              AND (created_at < %s::date
                   OR (mode = 'incremental' AND days_total = 0
                       AND created_at < now() - interval '7 days'))""",
        (cutoff,),
    )
    deleted["etl_runs"] = cur.rowcount or 0
    return {"cutoff": cutoff.isoformat(), "deleted_rows": deleted, "dropped_partitions": dropped}


async def index_health(conn: Any, config: EtlConfig) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(INDEX_HEALTH_SQL, (list(WAREHOUSE_TABLES),))
        rows = await cur.fetchall()
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
            await conn.execute(
                sql.SQL("REINDEX INDEX CONCURRENTLY analytics.{}").format(
                    sql.Identifier(r["index_name"])
                )
            )
            entry["reindexed"] = True
            entry["bytes_after"] = await _size(conn, r["index_name"])
            log.info("reindexed analytics.%s (bloat %.0f%%)", r["index_name"], ratio * 100)
        report.append(entry)
    return report


async def _size(conn: Any, index: str) -> int:
    cur = await conn.execute(
        "SELECT pg_relation_size(format('analytics.%%I', %s::text)::regclass)", (index,)
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0
