"""The in-app inbox and its live stream.

The drain announces in-app deliveries with `pg_notify('notify_inbox', user_id)` in the
transaction that delivers them (channel.py). Each API process keeps one LISTEN connection
(`InboxHub`) and wakes the streams of that user, which then read what is new from the
table: PostgreSQL carries the signal, so a stream sees deliveries made by any worker,
whichever API process serves it. The notification id is the SSE event id, so a client
that reconnects with `Last-Event-ID` gets what it missed. An idle stream runs no query
(see `InboxHub`).
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
from mysetlist.core.token_revocation import TokenRevocations

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


class InboxStream:
    """What one open stream waits on: `woken` is set when the user may have something new
    (a NOTIFY for them, or the listener reconnected) or their tokens were revoked."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.woken = asyncio.Event()


class InboxHub:
    """One LISTEN connection per process, fanned out to the streams of each user.

    An idle stream costs no query and holds no pool connection: it waits on its event,
    and reads its inbox when woken (and once when it opens). Those reads share `reads`, a
    quarter of the pool, so thousands of streams woken at once (the listener reconnected)
    cannot take every connection from the writes. A revocation of a user's tokens
    (core/token_revocation.py) wakes their streams too, which then end."""

    def __init__(
        self, database_url: str, *, pool_size: int = 20,
        revocations: TokenRevocations | None = None,
    ) -> None:  # fmt: skip
        self.database_url = database_url
        self.reads = asyncio.Semaphore(max(1, pool_size // 4))
        self._listeners: dict[str, set[InboxStream]] = defaultdict(set)
        self._users_by_key: dict[bytes, str] = {}
        self._revocations = revocations
        if revocations is not None:
            revocations.on_revoked(self._revoked)
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def _wake(self, user_id: str | None = None) -> None:
        groups = [self._listeners.get(user_id, set())] if user_id else self._listeners.values()
        for streams in groups:
            for stream in streams:
                stream.woken.set()

    def _revoked(self, user_key: bytes) -> None:
        user_id = self._users_by_key.get(user_key)
        if user_id is not None:
            self._wake(user_id)

    @property
    def open_streams(self) -> int:
        return sum(len(streams) for streams in self._listeners.values())

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
    async def subscribe(self, user_id: str) -> AsyncIterator[InboxStream]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listen(), name="notify-inbox-listen")
        stream = InboxStream(user_id)
        self._listeners[user_id].add(stream)
        if self._revocations is not None:
            self._users_by_key[self._revocations.user_key(user_id)] = user_id
        try:
            yield stream
        finally:
            self._listeners[user_id].discard(stream)
            if not self._listeners[user_id]:
                del self._listeners[user_id]
                if self._revocations is not None:
                    self._users_by_key.pop(self._revocations.user_key(user_id), None)

    def is_revoked(self, claims: Claims) -> bool:
        """Whether the stream's token was revoked since it opened."""
        if self._revocations is None:
            return False
        return self._revocations.is_revoked(claims.user_id, claims.raw.get("iat"))

    async def read_after(
        self, db: Database, claims: Claims, after: int, limit: int
    ) -> list[dict[str, Any]]:
        """A stream's read of what is new, within the streams' share of the pool."""
        async with self.reads:
            return await list_inbox(db, claims, limit=limit, after=after)

    async def newest_id(self, db: Database, claims: Claims) -> int:
        async with self.reads:
            newest = await list_inbox(db, claims, limit=1)
        return int(newest[0]["id"]) if newest else 0

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def sse_event(item: dict[str, Any]) -> bytes:
    return b"id: %d\nevent: notification\ndata: %b\n\n" % (item["id"], orjson.dumps(item))


# The stream's last event when the caller's tokens were revoked: the client should not
# reconnect with the same token (it would get a 401).
SSE_REVOKED = b"event: revoked\ndata: {}\n\n"
