"""The seam between our logic and PostgreSQL: pools, "as user" transactions, SQL files.

User-facing reads go through `Database.as_caller`, which opens a transaction, switches to
the caller's non-owner role (`authenticated`, or `service_role` for a service token) and
sets the JWT claims the way PostgREST/Supabase do,
so row-level security policies written as `auth.uid() = user_id` hold in the database
even if a route forgets a filter.

Behind a transaction pooler (pgbouncer in transaction mode, `DATABASE_DIRECT_URL` set apart
from `DATABASE_URL`) a session is not ours between transactions: connections through the
pooler never prepare statements (pgbouncer < 1.21 cannot route them), and what must outlive a
transaction (a session advisory lock, LISTEN) takes `Database.session_connection` or a
dedicated connection (`connect`, `connect_sync`), which go to the direct URL. Reads that may
be a few seconds stale take `await db.reader()`: the replica (`DATABASE_REPLICA_URL`) while
it is up and within `DATABASE_REPLICA_MAX_LAG_SECONDS` of the primary, else the primary
itself (docs/topology.md says which routes do).

Every session runs in UTC (storage is UTC; user time zones apply only at the edges): the
pool's connections and those from `connect` (a dedicated connection for work that cannot
share the pool, e.g. autocommit DDL, `REINDEX CONCURRENTLY`, a long-held session lock) get
`SET TIME ZONE 'UTC'` here and nowhere else.

A user-facing request is marked (`mark_caller_request`, by core/auth.py once a caller's
token verifies on a route that is not operator-only). In it, a connection taken as the owner
(`transaction`, `fetch_all`, `fetch_one`, `pool.connection()`), or a role other than the
caller's own (`as_user` for a service token), is a read RLS does not judge as the caller:
a `CallerViolation`, recorded (`Database.caller_violations`), counted in /metrics and logged
once per call site, or refused (`CallerViolationError`, a 500) when
`MYSETLIST_STRICT_CALLER_READS` is on. The owner work such a request legitimately does (its
erasure request, its audit entry, an export of rows RLS cannot attribute) opens
`db.as_owner(reason)` instead: named where it happens, greppable with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import sys
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from prometheus_client import Counter, Gauge
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

if TYPE_CHECKING:
    from mysetlist.core.auth import Claims

Row = dict[str, Any]
log = logging.getLogger(__name__)

CALLER_VIOLATIONS = Counter(
    "mysetlist_caller_violations",
    "Database use in a fan's request outside as_caller and as_owner (owner connections, a"
    " role not the caller's), by call site",
    ["site"],
)
STALE_CONNECTIONS = Counter(
    "mysetlist_db_stale_connections",
    "Pooled connections found closed by the server at BEGIN and replaced (a restart)",
)
REPLICA_LAG = Gauge(
    "mysetlist_db_replica_lag_seconds",
    "How far the read replica's replay is behind the primary (NaN while it cannot be read)",
)
REPLICA_UP = Gauge(
    "mysetlist_db_replica_up",
    "1 while the read replica answers and is within DATABASE_REPLICA_MAX_LAG_SECONDS",
)


@dataclass(frozen=True)
class CallerRequest:
    """A user-facing request in progress: who called, and (weakly) the task serving it."""

    user_id: str
    role: str
    task: weakref.ref[asyncio.Task[Any]] | None


# Set by `mark_caller_request` in the request's task, and seen by every task spawned from
# it while the request lasts: work the request drives through tasks of its own (Starlette
# streams a body in a task group's task, stream_zip pulls an export through a thread and a
# task per chunk) is the request's. Background work spawned from a request (a group commit's
# flusher, a fire-and-forget write) calls `unmark_caller_request` first: it is not the
# fan's request. A task that outlives the request is unmarked when the request ends.
caller_request: ContextVar[CallerRequest | None] = ContextVar("caller_request", default=None)


def mark_caller_request(user_id: str, role: str) -> None:
    """Mark the running task as serving a user-facing request by `user_id` (as `role`)."""
    task = asyncio.current_task()
    caller_request.set(CallerRequest(user_id, role, None if task is None else weakref.ref(task)))


def unmark_caller_request() -> None:
    """What runs from here in this task (and what it spawns) is not a fan's request: an
    operator-only route, or background work spawned from a request."""
    caller_request.set(None)


def current_caller_request() -> CallerRequest | None:
    """The user-facing request in progress that the running code serves, if any."""
    mark = caller_request.get()
    if mark is None or mark.task is None:
        return None
    task = mark.task()
    return mark if task is not None and not task.done() else None


class CallerViolationError(RuntimeError):
    """A fan's request used the database outside `as_caller` and `as_owner` (strict mode)."""


@dataclass(frozen=True)
class CallerViolation:
    """What a fan's request did outside `as_caller`/`as_owner`, and where (`site` is
    `module:line in function`)."""

    site: str
    what: str
    user_id: str
    role: str


_SKIPPED_MODULES = (__name__, "contextlib", "psycopg_pool")


def _call_site() -> str:
    """The first frame outside this module, contextlib and the pool: who asked."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        _SKIPPED_MODULES
    ):
        frame = frame.f_back
    return f"{frame.f_globals.get('__name__', '?')}:{frame.f_lineno} in {frame.f_code.co_name}"


class _CallerCheckedPool(AsyncConnectionPool[psycopg.AsyncConnection[Any]]):
    """The pool whose `connection()` reports owner use in a fan's request to its Database;
    `as_role` and `as_owner` take theirs through `unchecked_connection`."""

    database: Database

    @asynccontextmanager
    async def connection(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 (the pool's own signature)
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        mark = current_caller_request()
        if mark is not None:
            self.database._violation(mark, "owner connection")
        async with super().connection(timeout) as conn:
            yield conn

    def unchecked_connection(
        self, timeout: float | None = None
    ) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        return super().connection(timeout)


@cache
def read_sql(package: str, name: str) -> str:
    """The text of `name` (a .sql file) inside `package`, read once."""
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def split_statements(text: str) -> list[str]:
    """The statements of a SQL text, comment-only pieces dropped. sqlparse knows comments
    and quoting (a `;` at the end of a comment line ends no statement); a file of several
    statements is run one execute each, since server-side parameters allow only one."""
    import sqlparse

    out = []
    for statement in sqlparse.split(text):
        code = sqlparse.format(statement, strip_comments=True).strip().rstrip(";").strip()
        if code:
            out.append(statement.strip())
    return out


@cache
def read_sql_statements(package: str, name: str) -> tuple[str, ...]:
    """The statements of the .sql file `name` inside `package`, parsed once."""
    return tuple(split_statements(read_sql(package, name)))


def lock_key(name: str) -> int:
    """The advisory-lock key of the lock called `name`: the one way locks are keyed here
    (the first 8 bytes of its SHA-256 as a signed bigint), computed in Python so sync,
    async and .sql callers agree without each choosing a PostgreSQL hash function."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _server_of(url: str) -> str:
    """`host:port` of a postgresql:// URL (the part after any user info)."""
    return urlsplit(url).netloc.rpartition("@")[2]


def on_server(url: str, server_url: str) -> str:
    """`url`'s database, user and options on the server of `server_url`: the same database
    reached another way (directly instead of through the pooler, or on the replica)."""
    parts = urlsplit(url)
    user_info = parts.netloc.rpartition("@")[0]
    netloc = (user_info + "@" if user_info else "") + _server_of(server_url)
    return urlunsplit(parts._replace(netloc=netloc))


def behind_pooler(url: str) -> bool:
    """Whether `url` goes through the transaction pooler: its server is DATABASE_URL's while
    DATABASE_DIRECT_URL names another one (a database made on the same server, e.g. a
    test's, is behind the pooler too)."""
    from mysetlist.core.config import Settings, capability_settings

    settings = capability_settings(Settings)
    pooled, direct = settings.database_url, settings.database_direct_url
    if pooled is None or direct is None or _server_of(pooled) == _server_of(direct):
        return False
    return _server_of(url) == _server_of(pooled)


def session_url(url: str) -> str:
    """Where a connection whose session must be its own goes: `url`'s database on the direct
    server when `url` is behind the transaction pooler, else `url`."""
    from mysetlist.core.config import Settings, capability_settings

    return database_urls(capability_settings(Settings), url).direct if behind_pooler(url) else url


def prepare_threshold(url: str) -> int | None:
    """psycopg's `prepare_threshold` for a connection to `url`: never prepare behind the
    transaction pooler (pgbouncer 1.18, Debian 12's, routes no prepared statement; psycopg
    documents it needs pgbouncer >= 1.22 with libpq 17 to prepare there), psycopg's default
    (prepare a statement on its 5th run) elsewhere."""
    return None if behind_pooler(url) else 5


@dataclass(frozen=True)
class DatabaseUrls:
    """One database as each kind of work reaches it."""

    url: str  # the everyday pool (through the pooler when there is one)
    direct: str  # sessions: migrations, session advisory locks, LISTEN
    replica: str | None  # reads that may be stale (None: no replica)


def database_urls(settings: Any, url: str) -> DatabaseUrls:
    """`url`'s database directly and on the replica: the same database name, user and options
    on the servers `settings` names (`DATABASE_DIRECT_URL`, `DATABASE_REPLICA_URL`), so a
    database made after start (a test's own) is reached the same way as the configured one;
    `url` itself when there is no such server."""
    direct = settings.database_direct_url
    replica = settings.database_replica_url
    return DatabaseUrls(
        url,
        on_server(url, direct) if direct else url,
        on_server(url, replica) if replica else None,
    )


def connect_sync(
    url: str, *, application_name: str, autocommit: bool = False
) -> psycopg.Connection[Row]:
    """A blocking connection for command-line work (migrations, seeding), in UTC, returning
    rows as dicts: the synchronous twin of `connect` (direct, like it)."""
    url = session_url(url)
    conn = psycopg.connect(
        url,
        autocommit=autocommit,
        application_name=application_name,
        row_factory=dict_row,
        prepare_threshold=prepare_threshold(url),
    )
    try:
        conn.execute("SET TIME ZONE 'UTC'")
        if not autocommit:
            conn.commit()
    except BaseException:
        conn.close()
        raise
    return conn


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")
    await conn.commit()


async def connect(
    url: str,
    *,
    application_name: str,
    autocommit: bool = False,
    connect_timeout: int | None = None,
) -> psycopg.AsyncConnection[Row]:
    """A dedicated connection outside the pool, in UTC, returning rows as dicts. Its session
    is its own: behind a transaction pooler it goes to the direct server (`session_url`),
    since such connections keep session state (the group commit's and the ETL's temp
    tables and settings, LISTEN, session advisory locks)."""
    url = session_url(url)
    options: dict[str, Any] = (
        {} if connect_timeout is None else {"connect_timeout": connect_timeout}
    )
    conn = await psycopg.AsyncConnection.connect(
        url,
        autocommit=autocommit,
        application_name=application_name,
        row_factory=dict_row,
        prepare_threshold=prepare_threshold(url),
        **options,
    )
    try:
        await _configure(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


# How often a process looks at the replica's lag (in the background: a read never waits
# for the look), and how long the look may take.
REPLICA_CHECK_SECONDS = 1.0
REPLICA_CHECK_TIMEOUT_SECONDS = 2.0


class Database:
    """An async connection pool plus the transaction shapes the services use; with a direct
    URL apart from `url` (a pooler in front), a second pool for sessions; with a replica URL,
    the replica's own `Database` for `reader()`."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 20,
        strict_caller_reads: bool = False,
        direct_url: str | None = None,
        replica_url: str | None = None,
        replica_max_lag_seconds: float = 5.0,
        pool_timeout_seconds: float = 30.0,
    ) -> None:
        self.url = url
        self.direct_url = direct_url or url
        self.strict_caller_reads = strict_caller_reads
        # The latest violations (what tests and an operator look at).
        self.caller_violations: deque[CallerViolation] = deque(maxlen=1000)
        self._logged_sites: set[str] = set()
        self.pool = _CallerCheckedPool(
            url, min_size=min_size, max_size=max_size, open=False, configure=_configure,
            kwargs={"prepare_threshold": prepare_threshold(url)}, timeout=pool_timeout_seconds,
        )  # fmt: skip
        self.pool.database = self
        # Sessions that outlive a transaction (held advisory locks): few, direct.
        self._session_pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        if self.direct_url != url:
            self._session_pool = AsyncConnectionPool(
                self.direct_url, min_size=0, max_size=max(2, max_size // 4), open=False,
                configure=_configure,
            )  # fmt: skip
        self.replica: Database | None = None
        if replica_url is not None:
            self.replica = Database(
                replica_url, min_size=1, max_size=max(2, max_size // 2),
                strict_caller_reads=strict_caller_reads,
            )  # fmt: skip
        self.replica_max_lag_seconds = replica_max_lag_seconds
        self.replica_lag_seconds: float | None = None  # None: not known to be readable
        self._replica_checked_at = -math.inf
        self._replica_check: asyncio.Task[float | None] | None = None

    def _violation(self, mark: CallerRequest, what: str) -> None:
        violation = CallerViolation(_call_site(), what, mark.user_id, mark.role)
        self.caller_violations.append(violation)
        CALLER_VIOLATIONS.labels(violation.site).inc()
        if self.strict_caller_reads:
            raise CallerViolationError(
                f"{violation.site}: {what} in a request by {mark.role} {mark.user_id}; read"
                " through as_caller, or open owner work with as_owner(reason)"
            )
        if violation.site not in self._logged_sites and len(self._logged_sites) < 1000:
            self._logged_sites.add(violation.site)
            log.warning("%s in a fan's request outside as_caller/as_owner at %s", what,
                        violation.site)  # fmt: skip

    @asynccontextmanager
    async def as_owner(self, reason: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A transaction as the owner that a fan's request legitimately needs (its erasure
        request, its audit entry), `reason` saying why; outside requests, `transaction`."""
        if not reason.strip():
            raise ValueError("as_owner needs a reason")
        async with self.pool.unchecked_connection() as conn, conn.transaction():
            yield conn

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)
        if self._session_pool is not None:
            await self._session_pool.open(wait=True, timeout=30)
        if self.replica is not None:
            # A replica that is down at start is not waited for: reads go to the primary.
            await self.replica.pool.open(wait=False)

    async def close(self) -> None:
        if self._replica_check is not None:
            self._replica_check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replica_check
        if self.replica is not None:
            await self.replica.close()
        if self._session_pool is not None:
            await self._session_pool.close()
        await self.pool.close()

    @asynccontextmanager
    async def session_connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection whose session is ours until it goes back (not through a transaction
        pooler), in autocommit: for a session advisory lock held across transactions. The
        pool's own connection when the database has no pooler in front."""
        mark = current_caller_request()
        if mark is not None:
            self._violation(mark, "owner session connection")
        pool = self._session_pool if self._session_pool is not None else self.pool
        async with pool.connection() as conn:
            await conn.set_autocommit(True)
            try:
                yield conn
            finally:
                if not conn.closed:
                    await conn.set_autocommit(False)

    async def reader(self) -> Database:
        """Where a read that may be a few seconds stale goes: the replica while it answers
        and lags at most `replica_max_lag_seconds`, else this (the primary). Never waits:
        the replica's lag is looked at in the background, at most every second."""
        replica = self.replica
        if replica is None:
            return self
        if time.monotonic() - self._replica_checked_at >= REPLICA_CHECK_SECONDS and (
            self._replica_check is None or self._replica_check.done()
        ):
            self._replica_check = asyncio.create_task(
                self.check_replica(), name="replica-lag-check"
            )
        lag = self.replica_lag_seconds
        return replica if lag is not None and lag <= self.replica_max_lag_seconds else self

    async def check_replica(self) -> float | None:
        """Look at the replica's replay lag now (`replica_lag_seconds`, the gauges); None
        when it cannot be read."""
        replica = self.replica
        if replica is None:
            return None
        lag: float | None
        try:
            async with asyncio.timeout(REPLICA_CHECK_TIMEOUT_SECONDS + 0.5):
                pool = replica.pool
                async with pool.unchecked_connection(REPLICA_CHECK_TIMEOUT_SECONDS) as conn:
                    row = await fetch_one_in(conn, read_sql("mysetlist.core", "replica_lag.sql"))
                    await conn.rollback()
            lag = None if row is None or row["lag_seconds"] is None else float(row["lag_seconds"])
        except Exception as exc:  # down, restarting, or not a PostgreSQL: read the primary
            if self.replica_lag_seconds is not None:
                log.warning("read replica unavailable (%s); reading the primary", exc)
            lag = None
        self.replica_lag_seconds = lag
        self._replica_checked_at = time.monotonic()
        REPLICA_LAG.set(math.nan if lag is None else lag)
        REPLICA_UP.set(1 if lag is not None and lag <= self.replica_max_lag_seconds else 0)
        return lag

    @asynccontextmanager
    async def _begun(
        self,
        checkout: Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]],
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection inside a transaction. A pooled connection the server has
        closed (PostgreSQL restarted, a pooler or a firewall dropped it) fails at BEGIN,
        before anything of the caller's ran: it is taken again from the pool (which drops
        the broken one) rather than turned into a 5xx. After a restart every idle
        connection is such a one, hence as many tries as the pool has connections."""
        for attempt in range(self.pool.max_size + 1):
            async with checkout() as conn:
                # The transaction is entered by hand (not `async with`) so that only BEGIN
                # is retried, and with no exit stack on this hot path (one per request).
                tx = conn.transaction()
                try:
                    await tx.__aenter__()
                except psycopg.OperationalError:
                    if not conn.broken or attempt == self.pool.max_size:
                        raise
                    STALE_CONNECTIONS.inc()
                    continue
                try:
                    yield conn
                except BaseException as exc:
                    if not await tx.__aexit__(type(exc), exc, exc.__traceback__):
                        raise
                else:
                    await tx.__aexit__(None, None, None)
                return

    def transaction(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """A transaction as the owner role (background work, ingest, migrations)."""
        return self._begun(self.pool.connection)

    @asynccontextmanager
    async def as_role(
        self, role: str, claims: dict[str, Any]
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A transaction under `role` with `request.jwt.claims` set (both LOCAL)."""
        if role not in ("authenticated", "service_role", "anon"):
            raise ValueError(f"unknown database role {role!r}")
        mark = current_caller_request()
        if (
            mark is not None
            and role != "anon"
            and (mark.role, mark.user_id) != (role, claims.get("sub"))
        ):
            self._violation(mark, f"{role} as {claims.get('sub')}")
        async with self._begun(self.pool.unchecked_connection) as conn:
            await conn.execute(
                "SELECT set_config('request.jwt.claims', %s, true), set_config('role', %s, true)",
                (orjson.dumps(claims).decode(), role),
            )
            yield conn

    def as_user(
        self, user_id: str, claims: dict[str, Any] | None = None
    ) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        merged = {**(claims or {}), "role": "authenticated", "sub": str(user_id)}
        return self.as_role("authenticated", merged)

    def as_caller(
        self, claims: Claims
    ) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """A transaction as the token's own database role (authenticated or service_role)."""
        return self.as_role(claims.role, {**claims.raw, "sub": claims.user_id, "role": claims.role})

    async def fetch_all(self, query: Any, params: Any = None) -> list[Row]:
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            return await cur.fetchall()

    async def fetch_one(self, query: Any, params: Any = None) -> Row | None:
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            return await cur.fetchone()


async def fetch_all_in(
    conn: psycopg.AsyncConnection[Any], query: Any, params: Any = None
) -> list[Row]:
    """Rows as dicts on a connection already inside a transaction."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def fetch_one_in(
    conn: psycopg.AsyncConnection[Any], query: Any, params: Any = None
) -> Row | None:
    """The first row as a dict (None when there is none), on a connection."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()


def with_database(url: str, dbname: str) -> str:
    """`url` pointing at another database on the same server (URL form kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))
