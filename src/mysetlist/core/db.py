"""The seam between our logic and PostgreSQL: pools, "as user" transactions, SQL files.

User-facing reads go through `Database.as_user`, which opens a transaction, switches to
the non-owner role `authenticated` and sets the JWT claims the way PostgREST/Supabase do,
so row-level security policies written as `auth.uid() = user_id` hold in the database
even if a route forgets a filter.

Every session runs in UTC (storage is UTC; user time zones apply only at the edges): the
pool's connections and those from `connect` (a dedicated connection for work that cannot
share the pool, e.g. autocommit DDL, `REINDEX CONCURRENTLY`, a long-held session lock) get
`SET TIME ZONE 'UTC'` here and nowhere else.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

if TYPE_CHECKING:
    from mysetlist.core.auth import Claims

Row = dict[str, Any]


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


def connect_sync(
    url: str, *, application_name: str, autocommit: bool = False
) -> psycopg.Connection[Row]:
    """A blocking connection for command-line work (migrations, seeding), in UTC, returning
    rows as dicts: the synchronous twin of `connect`."""
    conn = psycopg.connect(
        url, autocommit=autocommit, application_name=application_name, row_factory=dict_row
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
    """A dedicated connection outside the pool, in UTC, returning rows as dicts."""
    options: dict[str, Any] = (
        {} if connect_timeout is None else {"connect_timeout": connect_timeout}
    )
    conn = await psycopg.AsyncConnection.connect(
        url,
        autocommit=autocommit,
        application_name=application_name,
        row_factory=dict_row,
        **options,
    )
    try:
        await _configure(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


class Database:
    """An async connection pool plus the transaction shapes the services use."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 20) -> None:
        self.url = url
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            url, min_size=min_size, max_size=max_size, open=False, configure=_configure
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A transaction as the owner role (background work, ingest, migrations)."""
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def as_role(
        self, role: str, claims: dict[str, Any]
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A transaction under `role` with `request.jwt.claims` set (both LOCAL)."""
        if role not in ("authenticated", "service_role", "anon"):
            raise ValueError(f"unknown database role {role!r}")
        async with self.pool.connection() as conn, conn.transaction():
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
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))
