"""The load harness's servers and world (bench/load.py).

- `servers()`: PostgreSQL and Redis for a run the harness starts itself. `DATABASE_URL` and
  `REDIS_URL` when set (a database `mysetlist_load_<hex>` is made on that server and dropped
  at the end; a Redis key prefix of its own); otherwise the program's embedded PostgreSQL
  and Valkey (core/embedded.py) in the run's folder. A chaos run needs servers it may kill
  and restart, so it always starts private ones (`load_chaos.PrivateServers`), never the
  machine's.
- `seed()`: the demo's synthetic world (demo/world.py, no event history: the fans make the
  events), a browser write key, the dashboard's operator.
- `Cast`: the fans (the demo's live cast query: reachable users and the artists each
  follows) and the scheduled shows nearest to now with their songs (demo/live_shows.sql).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from mysetlist.core.db import read_sql, with_database
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.core.migrate import apply_migrations

OPERATOR_ID = "00000000-0000-4000-8000-000000000001"  # the demo's operator (cli.DEMO_ADMIN_ID)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Endpoints:
    database_url: str  # the app database
    redis_url: str
    source: str  # env, embedded, private
    redis_prefix: str = field(default_factory=lambda: f"load-{uuid.uuid4().hex[:8]}")
    postgres_pid: int | None = None  # our own postmaster, when we started it


@contextlib.contextmanager
def servers(workdir: Path) -> Iterator[Endpoints]:
    admin, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if admin and redis_url:
        name = f"mysetlist_load_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield Endpoints(with_database(admin, name), redis_url, "env")
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    from mysetlist.core.embedded import EmbeddedPostgres, EmbeddedValkey

    pg, vk = EmbeddedPostgres(workdir / "servers"), EmbeddedValkey(workdir / "servers")
    try:
        url, rurl = pg.start(), vk.start()
        yield Endpoints(url, rurl, "embedded", postgres_pid=pg.postmaster_pid())
    finally:
        vk.stop()
        pg.stop()


def secrets_env(workdir: Path) -> dict[str, str]:
    """The secrets the server and the harness share (JWTs, email encryption)."""
    import base64

    return {
        "JWT_SECRET": secrets.token_urlsafe(32),
        "MYSETLIST_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "MYSETLIST_DATA_DIR": str(workdir / "appdata"),
    }


@dataclass
class Seeded:
    write_key: str
    world: str


def seed(database_url: str, users: int, encryption_key: str, seed_no: int = 42) -> Seeded:
    """Schema, a world with at least `users` reachable fans, a browser write key."""
    import base64

    from mysetlist.demo.spec import WorldSpec
    from mysetlist.demo.world import build_world, ensure_demo_operator
    from mysetlist.tracking import write_keys

    apply_migrations(database_url)
    cipher = FieldCipher(base64.urlsafe_b64decode(encryption_key))
    # No history (the fans make today's events); a short window so signups are recent.
    spec = WorldSpec(users=users + 10, days=2, seed=seed_no, events=False)
    summary = build_world(database_url, spec, cipher=cipher)
    ensure_demo_operator(database_url, OPERATOR_ID)
    with psycopg.connect(database_url) as conn:
        _, key = write_keys.create_key(conn, "load-harness", "browser")
        conn.commit()
    return Seeded(write_key=key, world=str(summary))


@dataclass
class Fan:
    user_id: str
    artists: list[int]


@dataclass
class Show:
    id: int
    artist_id: int
    songs: list[int]


@dataclass
class Cast:
    fans: list[Fan]
    shows: list[Show]
    artists: list[int]


def read_cast(database_url: str, users: int, shows: int = 200) -> Cast:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        fan_rows: list[dict[str, Any]] = conn.execute(
            read_sql("mysetlist.demo", "live_fans.sql"), {"operator": OPERATOR_ID, "limit": users}
        ).fetchall()
        show_rows = conn.execute(
            read_sql("mysetlist.demo", "live_shows.sql"), {"limit": shows}
        ).fetchall()
        artists = [r["id"] for r in conn.execute("SELECT id FROM app.artists ORDER BY id")]
    return Cast(
        fans=[Fan(str(r["user_id"]), list(r["artists"])) for r in fan_rows],
        shows=[Show(r["id"], r["artist_id"], list(r["songs"])) for r in show_rows if r["songs"]],
        artists=artists,
    )
