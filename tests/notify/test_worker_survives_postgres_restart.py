"""A chaos run found the worker stopped for good when PostgreSQL restarted (procrastinate
logged `poll_jobs_to_abort error`, then nothing was polled again, and 410 of 541 accepted
emails were never sent). Here, on a PostgreSQL of the test's own (initdb in a temporary
directory, another port; the shared server is never restarted): a running `mysetlist
worker`, a `pg_ctl restart -m fast`, then notifications accepted after it are all delivered
to the SMTP sink, each exactly once, by the same worker process. An inbox stream open
across the restart stays open and streams what is delivered after it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from mysetlist.core.migrate import apply_migrations
from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery.drain import Deliverer
from mysetlist.notify.inbox import routes as inbox_routes
from tests.conditions import until
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, free_port
from tests.notify.conftest import SmtpSink

pytestmark = [pytest.mark.db, pytest.mark.slow]
PG_BIN = Path("/usr/lib/postgresql/15/bin")


class OwnPostgres:
    """A throwaway PostgreSQL cluster run as the `postgres` system user (initdb refuses
    root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mysetlist-pg-restart-"))
        self.data = self.dir / "data"
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init_and_start(self) -> str:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync")  # fmt: skip
        self._pg_ctl("start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", action, "-D", str(self.data), "-w", "-t", "60",
                  "-l", str(self.dir / "log"), "-o", options, *extra)  # fmt: skip

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        try:
            self._pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip("needs PostgreSQL 15's server binaries and runuser")
    server = OwnPostgres()
    try:
        admin_url = server.init_and_start()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE mysetlist")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def database_url(own_postgres: OwnPostgres) -> str:
    """This module's tests (and its API and runtime fixtures) use the own server."""
    url = f"postgresql://postgres@127.0.0.1:{own_postgres.port}/mysetlist"
    apply_migrations(url)
    return url


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mysetlist", "worker", "--log-format", "json"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def _send(
    api_url: str, token_for: Any, user_ids: list[str], *, channel: str = "email"
) -> int:
    """One send, accepted at once: the API's pool replaces each connection the restart
    closed at BEGIN (core/db.py) instead of answering 5xx."""
    headers = {"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"}
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as c:
        response = await c.post("/api/notifications/send", headers=headers, json={
            "userIds": user_ids, "type": "account_notice", "title": "Restart test",
            "message": "m", "channels": [channel]})  # fmt: skip
        assert response.status_code == 202, response.text
    count: int = response.json()["notifications"]
    return count


async def test_the_worker_delivers_everything_after_postgres_restarts(
    own_postgres: OwnPostgres, api_url: str, token_for: Any, make_users: Any,
    runtime: Runtime, smtp_sink: SmtpSink, tmp_path: Path,
) -> None:  # fmt: skip
    env = {
        **os.environ,
        "DATABASE_URL": runtime.database_url,
        "REDIS_URL": runtime.redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "MYSETLIST_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "MYSETLIST_DATA_DIR": str(tmp_path),
        "EMAIL_PROVIDERS": "smtp",
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_sink.port}",
        "NOTIFY_RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "INFO",
    }
    before, after = await make_users(10, prefix="before"), await make_users(40, prefix="after")
    log = tmp_path / "worker.log"
    worker = _worker(env, log)
    try:
        assert await _send(api_url, token_for, [u.id for u in before]) == len(before)
        first = {u.email for u in before}

        async def first_delivered() -> bool:
            assert worker.poll() is None, log.read_text()
            if len(smtp_sink.for_users(first)) < len(first):
                return False
            # ... and recorded: a restart between the sink's accept and the commit would
            # send again (the one duplicate allowed), which is not what this test is about.
            async with runtime.db.transaction() as conn:
                cur = await conn.execute(
                    "SELECT count(*) FROM notify.notification_delivery"
                    " WHERE channel = 'email' AND status = 'queued'"
                )
                row = await cur.fetchone()
            return row is not None and row[0] == 0

        await until(first_delivered, "the first batch delivered and recorded", within=90)

        own_postgres.restart()
        accepted = await _send(api_url, token_for, [u.id for u in after])
        assert accepted == len(after)
        addresses = {u.email for u in after}

        async def all_delivered() -> bool:
            assert worker.poll() is None, log.read_text()[-5000:]
            return len({m["To"] for m in smtp_sink.for_users(addresses)}) == len(addresses)

        await until(all_delivered, "every notification accepted after the restart", within=120)
        per_address = Counter(m["To"] for m in smtp_sink.for_users(addresses | first))
        assert set(per_address.values()) == {1}, per_address.most_common(3)
        assert worker.poll() is None  # the same worker process: it recovered by itself
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        finally:
            if worker.poll() is None:
                worker.kill()


async def test_an_open_inbox_stream_survives_postgres_restarting(
    own_postgres: OwnPostgres, api_url: str, token_for: Any, make_users: Any,
    runtime: Runtime, deliverer: Deliverer, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(inbox_routes, "KEEPALIVE_SECONDS", 0.2)
    (fan,) = await make_users(1, prefix="stream")
    lines: list[str] = []
    headers = {"Authorization": f"Bearer {token_for(fan.id)}"}

    async def hold(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/api/notifications/stream", headers=headers) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                lines.append(line)

    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        stream = asyncio.create_task(hold(client))
        try:
            await until(_async(lambda: ": connected" in lines), "the stream open")
            own_postgres.restart()
            await runtime.db.pool.check()
            # The shared LISTEN reconnects (~1 s) and wakes the stream, whose read meets a
            # connection the restart killed; keepalives go on meanwhile.
            seen = len(lines)
            await until(
                _async(lambda: lines[seen:].count(": keepalive") >= 15 or stream.done()),
                "keepalives after the restart",
            )
            assert not stream.done(), "the stream ended when PostgreSQL restarted"
            await _send(api_url, token_for, [fan.id], channel="in_app")
            await deliverer.drain(runtime.db)
            await until(
                _async(lambda: "event: notification" in lines or stream.done()),
                "the notification on the stream",
            )
            assert "event: notification" in lines
        finally:
            stream.cancel()
            await asyncio.gather(stream, return_exceptions=True)


def _async(condition: Any) -> Any:
    async def check() -> Any:
        return condition()

    return check
