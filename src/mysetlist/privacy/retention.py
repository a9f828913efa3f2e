"""Retention the privacy capability adds to tracking's (which deletes expired events):
anonymisation per event type instead of deletion, and the notification and delivery logs'
retention. Batched (a transaction per batch) so a large backlog never holds long locks."""

from __future__ import annotations

from mysetlist.core.db import Database, read_sql
from mysetlist.core.watermarks import EPOCH, SAFETY_LAG, advance_watermark, read_watermark
from mysetlist.privacy.config import PrivacySettings

_PACKAGE = "mysetlist.privacy"
# Anonymisation's watermark, one per type and age ("<this>.<type>.<days>d"), as tracking's
# per-type retention: the last run's now minus SAFETY_LAG; a new name reads everything once.
ANONYMISE = "privacy.anonymise_events"


async def _in_batches(db: Database, statement: str, params: dict[str, object]) -> int:
    total = 0
    while True:
        async with db.transaction() as conn:
            cur = await conn.execute(statement, params)  # type: ignore[arg-type]
        total += cur.rowcount
        if cur.rowcount < int(str(params["batch"])):
            return total


async def anonymise_expired_events(db: Database, settings: PrivacySettings) -> dict[str, int]:
    """Events anonymised per type (MYSETLIST_ANONYMISE_EVENTS_AFTER)."""
    done = {}
    for event_type, days in sorted(settings.anonymise_events_after.items()):
        name = f"{ANONYMISE}.{event_type}.{days}d"
        async with db.transaction() as conn:
            mark = await read_watermark(conn, name)
            cur = await conn.execute(read_sql("mysetlist.tracking", "transaction_now.sql"))
            now = (await cur.fetchone() or [None])[0]
        done[event_type] = await _in_batches(
            db,
            read_sql(_PACKAGE, "anonymise_events_of_type.sql"),
            {"event_type": event_type, "days": days, "batch": settings.retention_batch_size,
             "now": now, "since": mark.position if mark and mark.position else EPOCH},
        )  # fmt: skip
        # Only once every batch is done: a run that fails midway is redone from the old mark
        # (anonymising twice changes nothing).
        async with db.transaction() as conn:
            await advance_watermark(conn, name, position=now - SAFETY_LAG)
    return done


async def delete_old_notifications(db: Database, settings: PrivacySettings) -> int:
    return await _in_batches(
        db,
        read_sql(_PACKAGE, "delete_old_notifications.sql"),
        {"days": settings.notification_retention_days, "batch": settings.retention_batch_size},
    )
