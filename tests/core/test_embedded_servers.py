"""Embedded servers: shared by processes on one data dir, stopped by the last one, and not
kept alive by the dead PID of a crashed holder. `mysetlist serve` stops them on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
import redis

from mysetlist.core.embedded import EmbeddedPostgres, EmbeddedValkey

pytestmark = pytest.mark.slow

HOLD_VALKEY = """
import sys
from pathlib import Path
from mysetlist.core.embedded import EmbeddedValkey
v = EmbeddedValkey(Path(sys.argv[1]))
print(v.start(), flush=True)
sys.stdin.read()
"""


def _port_open(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_closed(url: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _port_open(url):
            return True
        time.sleep(0.1)
    return False


def test_valkey_is_shared_and_the_last_holder_stops_it(tmp_path: Path) -> None:
    mine = EmbeddedValkey(tmp_path)
    url = mine.start()
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_VALKEY, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert other.stdout is not None
    assert other.stdout.readline().strip() == url  # attached, not a second server
    redis.Redis.from_url(url).set("shared", "yes")
    mine.stop()
    assert redis.Redis.from_url(url).get("shared") == b"yes"  # still held by the other
    assert other.stdin is not None
    other.stdin.close()
    other.wait(timeout=20)
    assert _wait_closed(url), "the last holder did not stop the server"


def test_dead_holder_does_not_keep_valkey_alive(tmp_path: Path) -> None:
    crashed = subprocess.Popen(
        [sys.executable, "-c", HOLD_VALKEY, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert crashed.stdout is not None
    url = crashed.stdout.readline().strip()
    crashed.kill()  # no atexit: its PID stays in the holders list
    crashed.wait()
    assert crashed.pid in json.loads((tmp_path / "valkey" / "holders.json").read_text())
    mine = EmbeddedValkey(tmp_path)
    assert mine.start() == url  # attaches to the orphaned server
    mine.stop()
    assert _wait_closed(url)


def test_postgres_prunes_dead_pids_and_stops(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path)
    url = pg.start()
    pids_file = pg.pgdata / ".handle_pids.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pids = json.loads(pids_file.read_text())
    pids_file.write_text(json.dumps([*pids, dead.pid]))
    postmaster = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
    pg.stop()  # the last live holder: the crashed holder's PID must not block the stop
    assert psutil.wait_procs([psutil.Process(postmaster)], timeout=15)[1] == []
    again = EmbeddedPostgres(tmp_path)
    assert again.start() == url  # a second start in the same process re-registers
    assert json.loads(pids_file.read_text()) == [os.getpid()]
    postmaster = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
    again.stop()
    assert psutil.wait_procs([psutil.Process(postmaster)], timeout=15)[1] == []


def test_serve_on_embedded_servers_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")} | {
        "MYSETLIST_DATA_DIR": str(tmp_path)
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mysetlist", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None, proc.stderr.read() if proc.stderr else ""
        assert ready.status_code == 200
        state = json.loads((tmp_path / "valkey" / "server.json").read_text())
        postmaster = int((tmp_path / "pg" / "postmaster.pid").read_text().split()[0])
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert stdout.strip().splitlines()[-1].count(".") == 2  # the admin token, a JWT
    _gone, alive = psutil.wait_procs(
        [psutil.Process(p) for p in (postmaster, state["pid"]) if psutil.pid_exists(p)],
        timeout=15,
    )
    assert alive == []


def test_postgres_is_shared_with_another_process_on_the_same_data_dir(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path)
    url = pg.start()
    postmaster = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "mysetlist", "migrate"],
        env=env | {"MYSETLIST_DATA_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # The other process attached to our server (it migrated our database) and, leaving,
    # did not stop it: we still hold it.
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('analytics.user_events')").fetchone()
    assert row is not None
    assert row[0] is not None
    assert psutil.pid_exists(postmaster)
    pg.stop()
    assert psutil.wait_procs([psutil.Process(postmaster)], timeout=15)[1] == []
