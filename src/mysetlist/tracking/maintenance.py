"""Background work of the tracking capability: hourly rollups (incremental by watermark),
the platform_metrics snapshot, partition upkeep and retention. Each run leaves a row in
`analytics.tracking_job_runs` (name, started/finished, status, rows, details, error)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from psycopg import sql

from mysetlist.core.db import Database, read_sql
from mysetlist.tracking.config import TrackingSettings

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.tracking"
ROLLUP = "hourly_rollup"
UPKEEP = "partition_upkeep"
# Events are stamped received_at = now() of their flush transaction, which commits a few ms
# later; the rollup stops this far behind now() so no in-flight flush is skipped.
SAFETY_LAG = timedelta(seconds=15)
_PARTITION = re.compile(r"^user_events_(\d{8})$")


@dataclass
class RunRecord:
    rows: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def job_run(db: Database, name: str) -> AsyncIterator[RunRecord]:
    """Record a run: a `running` row first (committed), then its outcome."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "INSERT INTO analytics.tracking_job_runs (name) VALUES (%s) RETURNING id", (name,)
        )
        row = await cur.fetchone()
        assert row is not None
        run_id = row[0]
    record = RunRecord()
    try:
        yield record
    except Exception as exc:
        async with db.transaction() as conn:
            await conn.execute(
                """UPDATE analytics.tracking_job_runs
                   SET finished_at = clock_timestamp(), status = 'failed', error = %s,
                       rows = %s, details = %s
                   WHERE id = %s""",
                (f"{type(exc).__name__}: {exc}", record.rows,
                 orjson.dumps(record.details).decode(), run_id),
            )  # fmt: skip
        raise
    async with db.transaction() as conn:
        await conn.execute(
            """UPDATE analytics.tracking_job_runs
               SET finished_at = clock_timestamp(), status = 'succeeded', rows = %s, details = %s
               WHERE id = %s""",
            (record.rows, orjson.dumps(record.details, default=str).decode(), run_id),
        )


async def rollup_hourly(
    db: Database,
    tracking: TrackingSettings,
    *,
    now: datetime | None = None,
    lag: timedelta = SAFETY_LAG,
) -> RunRecord:
    """Bring `hourly_real_time_metrics` up to date, snapshot `platform_metrics`, clean up."""
    async with job_run(db, ROLLUP) as record, db.transaction() as conn:
        if now is None:
            cur = await conn.execute("SELECT now()")
            now = (await cur.fetchone() or [None])[0]
        assert now is not None
        upto = now - lag
        cur = await conn.execute(
            "SELECT watermark FROM analytics.tracking_watermarks WHERE name = %s FOR UPDATE",
            (ROLLUP,),
        )
        found = await cur.fetchone()
        since = found[0] if found else datetime(1970, 1, 1, tzinfo=UTC)
        oldest = now - timedelta(hours=tracking.hourly_metrics_retention_hours)
        if upto > since:
            cur = await conn.execute(
                read_sql(_PACKAGE, "rollup_hourly.sql"),
                {"since": since, "upto": upto, "oldest": oldest},
            )
            record.rows = cur.rowcount
            await conn.execute(
                """INSERT INTO analytics.tracking_watermarks (name, watermark) VALUES (%s, %s)
                       ON CONFLICT (name) DO UPDATE
                       SET watermark = EXCLUDED.watermark, updated_at = now()""",
                (ROLLUP, upto),
            )
        cur = await conn.execute(
            "DELETE FROM analytics.hourly_real_time_metrics WHERE hour < %s", (oldest,)
        )
        cleaned = cur.rowcount
        # Relinks an earlier run has passed (up to its watermark) are done with.
        await conn.execute("DELETE FROM analytics.event_relinks WHERE relinked_at <= %s", (since,))
        await conn.execute(read_sql(_PACKAGE, "platform_metrics_snapshot.sql"), {"at": now})
        cur = await conn.execute(
            "DELETE FROM public.platform_metrics WHERE recorded_at < %s",
            (now - timedelta(days=tracking.platform_metrics_retention_days),),
        )
        record.details = {
                "since": since.isoformat(), "upto": upto.isoformat(),
                "hourly_rows_deleted": cleaned, "platform_metrics_deleted": cur.rowcount,
            }  # fmt: skip
    return record


async def partition_upkeep(
    db: Database, tracking: TrackingSettings, *, today: date | None = None
) -> RunRecord:
    """Create daily partitions ahead, drop those past retention, apply per-type retention,
    purge the dedup window."""
    today = today or datetime.now(UTC).date()
    async with job_run(db, UPKEEP) as record:
        async with db.transaction() as conn:
            await conn.execute("SET LOCAL lock_timeout = '5s'")
            cur = await conn.execute(
                "SELECT analytics.ensure_event_partitions(%s, %s)",
                (today - timedelta(days=1), today + timedelta(days=tracking.partitions_ahead_days)),
            )
            created = (await cur.fetchone() or [0])[0]
        cutoff_day = today - timedelta(days=tracking.event_retention_days)
        dropped: list[str] = []
        async with db.transaction() as conn:
            await conn.execute("SET LOCAL lock_timeout = '5s'")
            cur = await conn.execute(
                """SELECT c.relname FROM pg_inherits i
                   JOIN pg_class c ON c.oid = i.inhrelid
                   WHERE i.inhparent = 'analytics.user_events'::regclass"""
            )
            for (name,) in await cur.fetchall():
                m = _PARTITION.match(name)
                if m and datetime.strptime(m.group(1), "%Y%m%d").date() < cutoff_day:
                    await conn.execute(
                        sql.SQL("DROP TABLE analytics.{}").format(sql.Identifier(name))
                    )
                    dropped.append(name)
            cutoff = datetime.combine(cutoff_day, datetime.min.time(), tzinfo=UTC)
            cur = await conn.execute(
                "DELETE FROM analytics.user_events_default WHERE created_at < %s", (cutoff,)
            )
            deleted_default = cur.rowcount
        per_type: dict[str, int] = {}
        for event_type, days in sorted(tracking.event_retention_overrides.items()):
            if days >= tracking.event_retention_days:
                continue
            async with db.transaction() as conn:
                cur = await conn.execute(
                    """DELETE FROM analytics.user_events
                       WHERE event_type = %s AND created_at < now() - make_interval(days => %s)""",
                    (event_type, days),
                )
                per_type[event_type] = cur.rowcount
        async with db.transaction() as conn:
            cur = await conn.execute(
                """DELETE FROM analytics.event_dedup
                   WHERE received_at < now() - make_interval(days => %s)""",
                (tracking.dedup_window_days,),
            )
            dedup_purged = cur.rowcount
        record.rows = created + len(dropped)
        record.details = {
            "created": created, "dropped": dropped, "deleted_from_default": deleted_default,
            "deleted_by_type": per_type, "dedup_purged": dedup_purged,
        }  # fmt: skip
    return record
