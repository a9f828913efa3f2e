"""The in-app inbox and its live stream.

The drain announces in-app deliveries with `pg_notify('notify_inbox', user_id)` in the
transaction that delivers them (channel.py). Each API process keeps one LISTEN connection
(`InboxHub`) and wakes the streams of that user, which then read what is new from the
table: PostgreSQL carries the signal, so a stream sees deliveries made by any worker,
whichever API process serves it. The notification id is the SSE event id, so a client
that reconnects with `Last-Event-ID` gets what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import orjson

from mysetlist.core.auth import Claims
from mysetlist.core.db import Database, connect, fetch_all_in, fetch_one_in, read_sql

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.notify.inbox"


def public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "type": row["type"],
        "category": row["category"],
        "title": row["title"],
        "message": row["message"],
        "data": row["data"],
        "createdAt": row["created_at"],
        "readAt": row["read_at"],
    }


async def list_inbox(
    db: Database, claims: Claims, *, limit: int, before: int | None = None,
    after: int | None = None, unread_only: bool = False,
) -> list[dict[str, Any]]:  # fmt: skip
    """Newest first; with `after`, oldest first from just after that id (the stream)."""
    params = {"user_id": claims.user_id, "limit": limit, "before": before, "after": after,
              "unread_only": unread_only}  # fmt: skip
    async with db.as_caller(claims) as conn:
        rows = await fetch_all_in(conn, read_sql(_PACKAGE, "list.sql"), params)
    return [public(row) for row in rows]


async def unread_count(db: Database, claims: Claims) -> int:
    async with db.as_caller(claims) as conn:
        row = await fetch_one_in(
            conn, read_sql(_PACKAGE, "unread_count.sql"), {"user_id": claims.user_id}
        )
    return int(row["unread"]) if row else 0


async def mark_read(db: Database, claims: Claims, notification_id: int) -> dict[str, Any] | None:
    async with db.as_caller(claims) as conn:
        return await fetch_one_in(
            conn, read_sql(_PACKAGE, "mark_read.sql"),
            {"id": notification_id, "user_id": claims.user_id},
        )  # fmt: skip


async def mark_all_read(db: Database, claims: Claims) -> int:
    async with db.as_caller(claims) as conn:
        rows = await fetch_all_in(
            conn, read_sql(_PACKAGE, "mark_all_read.sql"), {"user_id": claims.user_id}
        )
    return len(rows)


class InboxHub:
    """One LISTEN connection per process, fanned out to the streams of each user."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._listeners: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def _wake(self, user_id: str | None = None) -> None:
        groups = [self._listeners.get(user_id, set())] if user_id else self._listeners.values()
        for events in groups:
            for event in events:
                event.set()

    async def _listen(self) -> None:
        while True:
            try:
                conn = await connect(
                    self.database_url, application_name="mysetlist-inbox", autocommit=True
                )
                async with conn:
                    await conn.execute(read_sql(_PACKAGE, "listen.sql"))
                    self.listening.set()
                    # Anything announced while we were not listening: everyone looks again.
                    self._wake()
                    async for notice in conn.notifies():
                        self._wake(notice.payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("inbox LISTEN connection lost; reconnecting")
            self.listening.clear()
            await asyncio.sleep(1)  # a pause before reconnecting, not a wait for a condition

    @contextlib.asynccontextmanager
    async def subscribe(self, user_id: str) -> AsyncIterator[asyncio.Event]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listen(), name="notify-inbox-listen")
        event = asyncio.Event()
        self._listeners[user_id].add(event)
        try:
            yield event
        finally:
            self._listeners[user_id].discard(event)
            if not self._listeners[user_id]:
                del self._listeners[user_id]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def sse_event(item: dict[str, Any]) -> bytes:
    return b"id: %d\nevent: notification\ndata: %b\n\n" % (item["id"], orjson.dumps(item))
