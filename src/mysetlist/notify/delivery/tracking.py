"""Opens and clicks of the emails we sent, counted on their deliveries. A click's destination
is the one stored when the email was sent (`tracked_links`), never one from the URL."""

from __future__ import annotations

from mysetlist.core.db import Database, fetch_one_in, read_sql

_PACKAGE = "mysetlist.notify.delivery"


async def count_open(db: Database, delivery_id: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(read_sql(_PACKAGE, "tracking_open.sql"), {"delivery_id": delivery_id})


async def count_click(db: Database, delivery_id: int, position: int) -> str | None:
    """The destination of the delivery's link at `position` (None: no such link)."""
    async with db.transaction() as conn:
        row = await fetch_one_in(
            conn, read_sql(_PACKAGE, "tracking_click.sql"),
            {"delivery_id": delivery_id, "position": position},
        )  # fmt: skip
    return None if row is None else str(row["url"])
