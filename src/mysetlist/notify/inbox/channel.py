"""The in-app channel: a notification row is the inbox entry; delivering it tells the
users' live streams (`service.InboxHub`) that something is new."""

from __future__ import annotations

from collections.abc import Sequence

from mysetlist.core.db import read_sql
from mysetlist.notify import metrics
from mysetlist.notify.delivery.channels import DeliveryContext, Outcome, Row

_PACKAGE = "mysetlist.notify.inbox"


class InAppChannel:
    """Delivered once committed, when the users' live streams hear of it."""

    name = "in_app"

    async def deliver(self, rows: Sequence[Row], ctx: DeliveryContext) -> list[Outcome]:
        users = sorted({str(row["user_id"]) for row in rows})
        await ctx.execute(read_sql(_PACKAGE, "announce.sql"), {"user_ids": users})
        metrics.DELIVERIES.labels("in_app", "inbox", "sent").inc(len(rows))
        return [Outcome(row["id"], "delivered", provider="inbox", attempted=False) for row in rows]

    async def close(self) -> None:
        pass
