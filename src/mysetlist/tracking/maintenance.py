"""Background work of the tracking capability: hourly rollups (incremental by watermark),
the platform_metrics snapshot, partition upkeep and retention. Each run leaves a row in
the shared run log (`core.run_log`, task `tracking.<task>`), and the rollup's progress is
the watermark of the same name (`core.watermarks`)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from mysetlist.core.db import Database, read_sql
from mysetlist.core.partitions import PartitionedTable, drop_expired, ensure_partitions
from mysetlist.core.run_log import RunRecord, job_run
from mysetlist.core.watermarks import EPOCH, SAFETY_LAG, advance_watermark, read_watermark
from mysetlist.tracking.config import TrackingSettings

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.tracking"
ROLLUP = "tracking.hourly_rollup"
UPKEEP = "tracking.partition_upkeep"
# Per-type retention's watermark, one per type and age ("<this>.<type>.<days>d"): its
# position is the last run's now minus SAFETY_LAG, and a changed age is a new name, whose
# first run reads every partition before the cutoff once.
TYPE_RETENTION = "tracking.type_retention"
USER_EVENTS = PartitionedTable(
    schema="analytics", name="user_events", key="created_at", grain="day", key_type="timestamptz"
)


async def rollup_hourly(
    db: Database,
    tracking: TrackingSettings,
    *,
    now: datetime | None = None,
    lag: timedelta = SAFETY_LAG,
    trigger: str = "schedule",
    job_id: int | None = None,
) -> RunRecord:
    """Bring `hourly_real_time_metrics` up to date, snapshot `platform_metrics`, clean up;
    one run in the run log."""
    async with job_run(db, ROLLUP, trigger=trigger, job_id=job_id) as record:
        await fill_hourly_rollup(db, tracking, record, now=now, lag=lag)
    return record


async def fill_hourly_rollup(
    db: Database,
    tracking: TrackingSettings,
    record: RunRecord,
    *,
    now: datetime | None = None,
    lag: timedelta = SAFETY_LAG,
) -> None:
    """The rollup's work, reported into `record` (a run its caller logs: `rollup_hourly`,
    or the periodic task)."""
    async with db.transaction() as conn:
        if now is None:
            cur = await conn.execute(read_sql(_PACKAGE, "transaction_now.sql"))
            now = (await cur.fetchone() or [None])[0]
        assert now is not None
        upto = now - lag
        # FOR UPDATE: a second rollup (another worker, a manual run) waits for this one.
        mark = await read_watermark(conn, ROLLUP, for_update=True)
        since = mark.position if mark and mark.position else EPOCH
        oldest = now - timedelta(hours=tracking.hourly_metrics_retention_hours)
        if upto > since:
            cur = await conn.execute(
                read_sql(_PACKAGE, "rollup_hourly.sql"),
                {"since": since, "upto": upto, "oldest": oldest},
            )
            record.rows = cur.rowcount
            await advance_watermark(conn, ROLLUP, position=upto, run_id=record.run_id)
        cur = await conn.execute(
            read_sql(_PACKAGE, "delete_expired_hourly_metrics.sql"), {"oldest": oldest}
        )
        cleaned = cur.rowcount
        await conn.execute(read_sql(_PACKAGE, "delete_passed_relinks.sql"), {"since": since})
        await conn.execute(read_sql(_PACKAGE, "platform_metrics_snapshot.sql"), {"at": now})
        cur = await conn.execute(
            read_sql(_PACKAGE, "delete_expired_platform_metrics.sql"),
            {"oldest": now - timedelta(days=tracking.platform_metrics_retention_days)},
        )
        record.details = {
                "since": since.isoformat(), "upto": upto.isoformat(),
                "hourly_rows_deleted": cleaned, "platform_metrics_deleted": cur.rowcount,
            }  # fmt: skip


async def partition_upkeep(
    db: Database,
    tracking: TrackingSettings,
    *,
    today: date | None = None,
    trigger: str = "schedule",
    job_id: int | None = None,
) -> RunRecord:
    """Create daily partitions ahead, drop those past retention, apply per-type retention,
    purge the dedup window and revocations older than a signed id's lifetime; one run in
    the run log."""
    async with job_run(db, UPKEEP, trigger=trigger, job_id=job_id) as record:
        await upkeep_partitions(db, tracking, record, today=today)
    return record


async def upkeep_partitions(
    db: Database, tracking: TrackingSettings, record: RunRecord, *, today: date | None = None
) -> None:
    """Partition upkeep's work, reported into `record` (a run its caller logs)."""
    today = today or datetime.now(UTC).date()
    async with db.pool.connection() as conn:
        created = await ensure_partitions(
            conn,
            USER_EVENTS,
            today - timedelta(days=1),
            today + timedelta(days=tracking.partitions_ahead_days),
        )
        expired = await drop_expired(
            conn, USER_EVENTS, today - timedelta(days=tracking.event_retention_days)
        )
    per_type: dict[str, int] = {}
    for event_type, days in sorted(tracking.event_retention_overrides.items()):
        if days >= tracking.event_retention_days:
            continue
        name = f"{TYPE_RETENTION}.{event_type}.{days}d"
        async with db.transaction() as conn:
            # FOR UPDATE: a concurrent run of the same type waits, then starts at this mark.
            mark = await read_watermark(conn, name, for_update=True)
            cur = await conn.execute(read_sql(_PACKAGE, "transaction_now.sql"))
            now = (await cur.fetchone() or [None])[0]
            cur = await conn.execute(
                read_sql(_PACKAGE, "delete_expired_events_of_type.sql"),
                {"event_type": event_type, "days": days, "now": now,
                 "since": mark.position if mark and mark.position else EPOCH},
            )  # fmt: skip
            per_type[event_type] = cur.rowcount
            await advance_watermark(conn, name, position=now - SAFETY_LAG, run_id=record.run_id)
    async with db.transaction() as conn:
        cur = await conn.execute(
            read_sql(_PACKAGE, "purge_event_dedup.sql"), {"days": tracking.dedup_window_days}
        )
        dedup_purged = cur.rowcount
        cur = await conn.execute(
            read_sql(_PACKAGE, "purge_revoked_signed_ids.sql"),
            {"ttl_seconds": tracking.signed_id_ttl_days * 86400},
        )
        revocations_purged = cur.rowcount
    record.rows = len(created) + len(expired.dropped)
    record.details = {
        "created": len(created), "dropped": expired.dropped,
        "deleted_from_default": expired.rows_deleted,
        "deleted_by_type": per_type, "dedup_purged": dedup_purged,
        "revocations_purged": revocations_purged,
    }  # fmt: skip
