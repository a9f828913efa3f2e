"""Group commit: many concurrent requests' events in one transaction.

Each API process runs one `GroupCommitWriter`. A request validates its events, calls
`submit(rows)` and awaits the result; the writer's dispatcher hands everything pending
(whole requests, up to `max_events`) to the next idle connection, which stages the rows with
a binary COPY into a temporary table and moves the new ones (by sender and message_id) into
`analytics.user_events` in the same transaction. A small flush without identity links is a
single autocommit INSERT of unnest()ed arrays instead (one round trip, not BEGIN, COPY,
INSERT, COMMIT). Futures resolve only after COMMIT returns, so a 2xx means durable.

While all connections are busy the next batch keeps growing: under load batches get bigger
instead of requests waiting for a timer; with no load a lone event commits at once (an
optional linger trades latency for bigger batches).

A request's events are never split across transactions (all-or-nothing). If a coalesced
transaction fails for a data reason, each request is retried alone so one bad request fails
alone. A connection lost mid-transaction (even during COMMIT, where the outcome is unknown)
is retried once on a new connection: safe, because message_id dedup makes the retry
idempotent. The queue is bounded: `submit` raises `Overloaded` when full (503 + Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

import psycopg
from psycopg import pq, sql
from psycopg.adapt import Dumper, PyFormat

from mysetlist.core.db import connect, read_sql
from mysetlist.tracking import monitoring
from mysetlist.tracking.events import EventRow, IdentityLink

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.tracking"

STAGING_DDL = read_sql(_PACKAGE, "ingest_staging_create.sql")
COPY_SQL = read_sql(_PACKAGE, "ingest_staging_copy.sql")
APP_NAME = "mysetlist-group-commit"  # pg_stat_activity.application_name of the writers

# Up to this many events without identity links, a flush is one INSERT of unnest()ed arrays
# in autocommit (one round trip); bigger flushes stage with binary COPY in a transaction.
# With the arrays built by `ArrayEncoder`, the client CPU per event is below COPY's up to
# ~500 events (2.6-2.8 against 3.1-3.5 us at 300; 2.2 against 1.8-1.9 at 1,000; server CPU
# the same within the measure), so 300 keeps the usual flush (a few requests) on one statement.
SMALL_FLUSH = 300
COPY_TYPES = [
    "text", "uuid", "text", "text", "text", "text", "text", "text", "timestamptz", "uuid",
    "bytea", "bool", "bool",
]  # fmt: skip


# -- a small flush's arrays, in PostgreSQL's binary array format ---------------------------
# psycopg's list dumper is Python with a call and two appends per element: 3 us/event of a
# small flush's client CPU (13 columns). The same bytes, built a column at a time: each
# element by psycopg's own (C) element dumper, or as is for uuid (16 bytes), bytea, bool;
# tests/tracking/test_group_commit.py holds them byte-equal to psycopg's.
_ARRAY_HEAD = struct.Struct("!IIIII")  # ndims, hasnull, element oid, length, lower bound
_LEN = struct.Struct("!i").pack
_NULL = b"\xff\xff\xff\xff"
_LEN1, _LEN8, _LEN16 = _LEN(1), _LEN(8), _LEN(16)
_TRUE, _FALSE = _LEN1 + b"\x01", _LEN1 + b"\x00"


class _Array(bytes):
    """An array already in binary wire format; `oid` is its array type (a subclass each)."""

    oid = 0


class _ArrayDumper(Dumper):
    format = pq.Format.BINARY

    def __init__(self, cls: type, context: Any = None) -> None:
        super().__init__(cls, context)
        self.oid = cls.oid  # type: ignore[attr-defined]

    def dump(self, obj: Any) -> bytes:
        return bytes(obj)


def _array_type(name: str, oid: int) -> type[_Array]:
    return type(name, (_Array,), {"oid": oid})


_TextArray = _array_type("_TextArray", 1009)
_UuidArray = _array_type("_UuidArray", 2951)
_TimestamptzArray = _array_type("_TimestamptzArray", 1185)
_ByteaArray = _array_type("_ByteaArray", 1001)
_BoolArray = _array_type("_BoolArray", 1000)
_ELEMENT_OID = {_TextArray: 25, _UuidArray: 2950, _TimestamptzArray: 1184, _ByteaArray: 17,
                _BoolArray: 16}  # fmt: skip


def _array(kind: type[_Array], encoded: list[bytes], has_null: bool) -> _Array:
    head = _ARRAY_HEAD.pack(1, has_null, _ELEMENT_OID[kind], len(encoded), 1)
    return kind(head + b"".join(encoded))


ElementDump = Callable[[Any], bytes]
BINARY = PyFormat.BINARY


class ArrayEncoder:
    """A small flush's columns as binary arrays for staged_event_arrays.sql."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.str = cast(ElementDump, conn.adapters.get_dumper(str, BINARY)(str, conn).dump)
        dumper = conn.adapters.get_dumper(datetime, BINARY)(datetime, conn)
        # the dumper of an aware time (timestamptz): every created_at is one
        self.tz = cast(ElementDump, dumper.upgrade(datetime.now(UTC), BINARY).dump)

    def text(self, values: list[str | None]) -> _Array:
        dump = self.str
        out = [_NULL if v is None else _LEN(len(b := dump(v))) + b for v in values]
        return _array(_TextArray, out, None in values)

    def params(self, rows: Sequence[EventRow]) -> dict[str, Any]:
        (message_id, user_id, anonymous_id, session_id, event_type, page_url, properties,
         source, created_at, claimed_user_id, sender, proves_anonymous,
         proves_session) = (list(col) for col in zip(*rows, strict=True))  # fmt: skip
        tz = self.tz
        return {
            "message_id": self.text(message_id),
            "user_id": _uuids(user_id),
            "anonymous_id": self.text(anonymous_id),
            "session_id": self.text(session_id),
            "event_type": self.text(event_type),
            "page_url": self.text(page_url),
            "properties": self.text(properties),
            "source": self.text(source),
            "created_at": _array(_TimestamptzArray, [_LEN8 + tz(t) for t in created_at], False),
            "claimed_user_id": _uuids(claimed_user_id),
            "sender": _array(_ByteaArray, [_LEN(len(b)) + b for b in sender], False),
            "proves_anonymous": _bools(proves_anonymous),
            "proves_session": _bools(proves_session),
        }


def _uuids(values: list[Any]) -> _Array:
    out = [_NULL if v is None else _LEN16 + v.bytes for v in values]
    return _array(_UuidArray, out, None in values)


def _bools(values: list[bool]) -> _Array:
    return _array(_BoolArray, [_TRUE if v else _FALSE for v in values], False)


@cache
def _insert_new_events(*, from_arrays: bool) -> sql.Composed:
    """insert_new_events.sql over the COPY-filled temp table, or over query parameters
    (arrays) for a small flush: one statement text, so both paths keep the same semantics."""
    template = sql.SQL(read_sql(_PACKAGE, "insert_new_events.sql"))  # type: ignore[arg-type]
    if from_arrays:
        prelude = sql.SQL(read_sql(_PACKAGE, "staged_event_arrays.sql"))  # type: ignore[arg-type]
        return template.format(prelude=prelude, staged=sql.Identifier("staged"))
    return template.format(
        prelude=sql.SQL(""), staged=sql.Identifier("pg_temp", "ingest_staging_v2")
    )


@cache
def _relink_events(kind: str) -> sql.Composed:
    """relink_events.sql matching a link's ids on `anonymous_id` or `session_id`."""
    template = sql.SQL(read_sql(_PACKAGE, "relink_events.sql"))  # type: ignore[arg-type]
    return template.format(id_column=sql.Identifier(f"{kind}_id"))


class Overloaded(Exception):
    """The writer's queue is full; the client should retry after `retry_after` seconds."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__("ingest queue is full")
        self.retry_after = retry_after


class Unavailable(Exception):
    """The events could not be committed (database unreachable, writer stopped)."""


class Rejected(Exception):
    """The database refused this request's events (bad data that passed validation): a
    client error, which retrying cannot fix; the other requests of its flush still commit."""


# Errors a request's data can cause; a combined flush that hits one is retried request by
# request, so only the request that caused it fails.
_DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError)


def _failure(exc: Exception) -> Exception:
    """What a request whose flush raised `exc` (with that request alone) is told."""
    if isinstance(exc, _DATA_ERRORS):
        return Rejected(f"the database refused the events: {exc.diag.message_primary or exc}")
    return Unavailable(f"events not stored: {type(exc).__name__}: {exc}")


@dataclass
class _Request:
    rows: Sequence[EventRow]
    links: Sequence[IdentityLink]
    future: asyncio.Future[int]


@dataclass
class FlushResult:
    rows: list[EventRow]
    inserted: int


@dataclass
class _Slot:
    conn: psycopg.AsyncConnection[Any] | None = None


@dataclass
class GroupCommitWriter:
    database_url: str
    max_events: int = 5000
    max_queue: int = 50_000
    connections: int = 2
    linger: float = 0.0
    on_commit: Callable[[FlushResult], Awaitable[None] | None] | None = None

    _pending: deque[_Request] = field(default_factory=deque, init=False)
    _pending_events: int = field(default=0, init=False)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _idle: asyncio.Queue[_Slot] = field(default_factory=asyncio.Queue, init=False)
    _flushes: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _dispatcher: asyncio.Task[None] | None = field(default=None, init=False)
    _slots: list[_Slot] = field(default_factory=list, init=False)
    _closed: bool = field(default=False, init=False)

    async def start(self) -> None:
        self._slots = [_Slot() for _ in range(self.connections)]
        for slot in self._slots:
            # Connect eagerly so the first request does not pay for it (lazily on failure).
            with contextlib.suppress(psycopg.Error, OSError):
                slot.conn = await self._connect()
            self._idle.put_nowait(slot)
        self._dispatcher = asyncio.create_task(self._dispatch(), name="group-commit")

    async def stop(self, grace: float = 10.0) -> None:
        """Commit what is pending (up to `grace` seconds), then close the connections."""
        self._closed = True
        deadline = time.monotonic() + grace
        while (self._pending or self._flushes) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        for req in self._pending:
            if not req.future.done():
                req.future.set_exception(Unavailable("the writer is shutting down"))
        self._pending.clear()
        for slot in self._slots:
            if slot.conn is not None:
                await slot.conn.close()

    async def submit(self, rows: Sequence[EventRow], links: Sequence[IdentityLink] = ()) -> int:
        """Wait until `rows` are committed (or were already, by message_id); return how many
        rows the request had."""
        if self._closed:
            raise Unavailable("the writer is shutting down")
        if self._pending_events and self._pending_events + len(rows) > self.max_queue:
            raise Overloaded(retry_after=1)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(rows, links, future))
        self._pending_events += len(rows)
        monitoring.QUEUE_DEPTH.set(self._pending_events)
        self._wakeup.set()
        return await future

    # -- internals ---------------------------------------------------------------------------

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await connect(
            self.database_url, application_name=APP_NAME, autocommit=True, connect_timeout=5
        )
        await conn.execute(STAGING_DDL)
        for kind in _ELEMENT_OID:
            conn.adapters.register_dumper(kind, _ArrayDumper)
        return conn

    def _take(self) -> list[_Request]:
        batch: list[_Request] = []
        count = 0
        while self._pending:
            req = self._pending[0]
            if batch and count + len(req.rows) > self.max_events:
                break
            self._pending.popleft()
            batch.append(req)
            count += len(req.rows)
        self._pending_events -= count
        monitoring.QUEUE_DEPTH.set(self._pending_events)
        return batch

    async def _dispatch(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                slot = await self._idle.get()
                if self.linger and self._pending_events < self.max_events:
                    await asyncio.sleep(self.linger)
                batch = self._take()
                if not batch:
                    self._idle.put_nowait(slot)
                    break
                task = asyncio.create_task(self._flush_on(slot, batch))
                self._flushes.add(task)
                task.add_done_callback(self._flushes.discard)

    async def _flush_on(self, slot: _Slot, batch: list[_Request]) -> None:
        try:
            try:
                result = await self._commit_with_retry(slot, batch)
            except (*_DATA_ERRORS, psycopg.ProgrammingError) as exc:
                if len(batch) == 1:
                    raise
                log.warning("coalesced flush failed (%s); retrying requests one by one", exc)
                for req in batch:
                    await self._flush_on_alone(slot, req)
                return
            self._resolve(batch, result)
        except Exception as exc:
            failure = _failure(exc)
            if isinstance(failure, Rejected):
                log.warning("group commit refused a request: %s", exc)
            else:
                log.exception("group commit failed for %d request(s)", len(batch))
            for req in batch:
                if not req.future.done():
                    req.future.set_exception(failure)
        finally:
            self._idle.put_nowait(slot)

    async def _flush_on_alone(self, slot: _Slot, req: _Request) -> None:
        try:
            result = await self._commit_with_retry(slot, [req])
        except Exception as exc:
            log.warning("group commit failed for one request: %s", exc)
            if not req.future.done():
                req.future.set_exception(_failure(exc))
            return
        self._resolve([req], result)

    def _resolve(self, batch: list[_Request], result: FlushResult) -> None:
        for req in batch:
            if not req.future.done():
                req.future.set_result(len(req.rows))
        monitoring.GROUP_COMMIT_BATCH_EVENTS.observe(len(result.rows))
        monitoring.GROUP_COMMIT_BATCH_REQUESTS.observe(len(batch))
        monitoring.INGEST_EVENTS.labels("stored").inc(result.inserted)
        monitoring.INGEST_EVENTS.labels("duplicate").inc(len(result.rows) - result.inserted)
        if result.rows:
            monitoring.note_committed(max(r.created_at for r in result.rows).timestamp())
        if self.on_commit is not None:
            try:
                maybe = self.on_commit(result)
                if asyncio.iscoroutine(maybe):
                    task = asyncio.ensure_future(maybe)
                    self._flushes.add(task)  # type: ignore[arg-type]
                    task.add_done_callback(self._flushes.discard)  # type: ignore[arg-type]
            except Exception:  # best effort: the events are already committed
                log.exception("on_commit hook failed")

    async def _commit_with_retry(self, slot: _Slot, batch: list[_Request]) -> FlushResult:
        for attempt in (1, 2):
            try:
                if slot.conn is None or slot.conn.closed:
                    slot.conn = await self._connect()
                return await self._commit(slot.conn, batch)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                # Connection trouble: the outcome of COMMIT may be unknown. Retrying on a new
                # connection is safe because message_id dedup makes the retry idempotent.
                if slot.conn is not None:
                    with contextlib.suppress(Exception):
                        await slot.conn.close()
                slot.conn = None
                if attempt == 2:
                    raise
                log.warning("group commit connection failed (%s); retrying once", exc)
        raise AssertionError("unreachable")

    async def _commit(
        self, conn: psycopg.AsyncConnection[Any], batch: list[_Request]
    ) -> FlushResult:
        started = time.perf_counter()
        rows = [row for req in batch for row in req.rows]
        # Message ids all distinct (the usual flush): no (sender, id) pair repeats either,
        # and a set of the ids is cheaper than one of pairs.
        if len({row.message_id for row in rows}) != len(rows):
            seen: set[tuple[bytes, str]] = set()
            firsts: list[EventRow] = []
            for row in rows:
                key = (row.sender, row.message_id)
                if key not in seen:  # a sender's id twice in one flush: keep the first
                    seen.add(key)
                    firsts.append(row)
            rows = firsts
        # Links were decided at validation (proof of possession or a trusted key); the
        # writer only records them in the events' transaction.
        links = [link for req in batch for link in req.links]
        if not links and len(rows) <= SMALL_FLUSH:
            # Autocommit connection: one statement is one transaction, committed on return.
            params = ArrayEncoder(conn).params(rows)
            async with conn.cursor() as cur:
                await cur.execute(_insert_new_events(from_arrays=True), params)
                inserted = cur.rowcount
            monitoring.GROUP_COMMIT_SECONDS.observe(time.perf_counter() - started)
            return FlushResult(rows, inserted)
        async with conn.transaction(), conn.cursor() as cur:
            async with cur.copy(COPY_SQL) as copy:
                copy.set_types(COPY_TYPES)
                for row in rows:
                    await copy.write_row(row)
            await cur.execute(_insert_new_events(from_arrays=False))
            inserted = cur.rowcount
            if links:
                await self._link(cur, links)
        monitoring.GROUP_COMMIT_SECONDS.observe(time.perf_counter() - started)
        return FlushResult(rows, inserted)

    async def _link(self, cur: psycopg.AsyncCursor[Any], links: list[IdentityLink]) -> None:
        kinds, ids, users = (list(col) for col in zip(*links, strict=True))
        await cur.execute(
            read_sql(_PACKAGE, "link_identities.sql"), {"kinds": kinds, "ids": ids, "users": users}
        )
        new_links = await cur.fetchall()
        for kind in ("anonymous", "session"):
            ids = [r["id"] for r in new_links if r["kind"] == kind]
            if ids:
                users = [r["user_id"] for r in new_links if r["kind"] == kind]
                await cur.execute(_relink_events(kind), {"ids": ids, "users": users})
