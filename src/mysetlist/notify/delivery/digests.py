"""Digests: the notifications of a category a user reads as a daily or weekly digest are
folded into one email per user per period (in the user's time zone), leaving out what the
user already read in the app. Idempotent: the digest's dedup key is (frequency, period)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from mysetlist.core.db import Database, fetch_all_in, fetch_one_in, read_sql
from mysetlist.core.job_queue import defer_in_transaction
from mysetlist.notify.tasks import DELIVER, QUEUE

_PACKAGE = "mysetlist.notify.delivery"


async def send_due_digests(db: Database, *, limit: int = 500, now: datetime | None = None) -> int:
    """Write the digests of every ended period (with their email delivery and a drain
    job, in one transaction per digest); how many digests were written."""
    now = now or datetime.now(UTC)
    async with db.transaction() as conn:
        due = await fetch_all_in(
            conn, read_sql(_PACKAGE, "digest_due.sql"), {"limit": limit, "now": now}
        )
    written = 0
    for group in due:
        async with db.transaction() as conn:
            written += await _one_digest(conn, group, now)
    return written


async def _one_digest(conn: Any, group: dict[str, Any], now: datetime) -> int:
    params = {"user_id": group["user_id"], "ids": group["ids"]}
    items = await fetch_all_in(conn, read_sql(_PACKAGE, "digest_items_unseen.sql"), params)
    if not items:
        # Everything was seen in the app already (or carried by a concurrent run).
        await conn.execute(
            read_sql(_PACKAGE, "digest_items_carried.sql"), {**params, "digest_id": 0}
        )
        return 0
    frequency, period = group["frequency"], group["period_start"].isoformat()
    label = "week" if frequency == "weekly" else "day"
    row = await fetch_one_in(
        conn,
        read_sql(_PACKAGE, "digest_notification_insert.sql"),
        {
            "user_id": group["user_id"],
            "title": f"Your {label} on MySetlist",
            "message": f"{len(items)} update{'s' if len(items) != 1 else ''}",
            "frequency": frequency,
            "period": period,
            "variables": orjson.dumps(
                {"items": [{"title": i["title"], "message": i["message"]} for i in items]}
            ).decode(),
            "dedup_key": f"digest:{frequency}:{period}",
            "now": now,
        },
    )
    digest_id = row["notification_id"] if row is not None else 0
    await conn.execute(
        read_sql(_PACKAGE, "digest_items_carried.sql"),
        {"user_id": group["user_id"], "ids": group["ids"], "digest_id": digest_id},
    )
    if row is None:
        return 0
    await defer_in_transaction(conn, DELIVER, queue=QUEUE)
    return 1
