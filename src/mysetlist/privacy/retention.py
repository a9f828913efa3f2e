"""Retention the privacy capability adds to tracking's (which deletes expired events):
anonymisation per event type instead of deletion, and the notification and delivery logs'
retention. Batched (a transaction per batch) so a large backlog never holds long locks."""

from __future__ import annotations

from mysetlist.core.db import Database, read_sql
from mysetlist.privacy.config import PrivacySettings

_PACKAGE = "mysetlist.privacy"


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
        done[event_type] = await _in_batches(
            db,
            read_sql(_PACKAGE, "anonymise_events_of_type.sql"),
            {"event_type": event_type, "days": days, "batch": settings.retention_batch_size},
        )
    return done


async def delete_old_notifications(db: Database, settings: PrivacySettings) -> int:
    return await _in_batches(
        db,
        read_sql(_PACKAGE, "delete_old_notifications.sql"),
        {"days": settings.notification_retention_days, "batch": settings.retention_batch_size},
    )
