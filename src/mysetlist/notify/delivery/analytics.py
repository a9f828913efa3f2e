"""notification_analytics: per day, type, template and channel, the counts behind delivery,
open and click-through rates, bounces, complaints and unsubscribes (recomputed for recent
days; a re-run replaces the rows)."""

from __future__ import annotations

from datetime import date

from mysetlist.core.db import Database, read_sql


async def refresh_daily(db: Database, *, since: date) -> int:
    """Recompute the rows of the days from `since`; how many rows were written."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            read_sql("mysetlist.notify.delivery", "analytics_daily.sql"), {"since": since}
        )
        return cur.rowcount
