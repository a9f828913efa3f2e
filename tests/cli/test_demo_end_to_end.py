"""`mysetlist demo` as a newcomer runs it: embedded servers, a small world, the API; the
printed `export TOKEN=…` works; simulated fans are live and mail lands in the local outbox;
Ctrl-C leaves no server process behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conditions import first_answer, wait_until
from tests.conftest import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Outside pytest's tmp root: as root, embedded PostgreSQL runs as another user, who must
    # traverse the path, and every pytest session resets that root to 0700.
    path = Path(tempfile.mkdtemp(prefix="mysetlist-demo-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _servers_on(data_dir: Path) -> list[psutil.Process]:
    """Every process that belongs to the data dir: PostgreSQL (its cwd), Valkey (its
    config file) and the watchdog (its argument)."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        where = " ".join(process.info["cmdline"] or []) + " " + (process.info["cwd"] or "")
        if str(data_dir) in where:
            found.append(process)
    return found


def test_demo_builds_serves_and_stops_cleanly(data_dir: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    demo = subprocess.Popen(
        [sys.executable, "-m", "mysetlist", "demo", "--users", "50", "--days", "7",
         "--port", str(port)],
        env=env | {"MYSETLIST_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert demo.stdout is not None
        export = demo.stdout.readline().strip()  # after the world is built
        assert export.startswith("export TOKEN="), demo.stderr.read() if demo.stderr else ""
        token = export.removeprefix("export TOKEN=")
        ready = first_answer(f"{base}/readyz", demo)
        assert ready.status_code == 200
        assert ready.json()["degraded"] is False
        me = httpx.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        runs = httpx.get(f"{base}/api/analytics/etl", headers={"Authorization": f"Bearer {token}"})
        assert runs.status_code == 200, runs.text  # the README's curl, as an operator
        assert httpx.get(f"{base}/api/me").status_code == 401
        # Alive: simulated fans show in the live metrics, and their notifications reach
        # the local outbox (no mail provider is configured here) through the worker.
        wait_until(
            lambda: httpx.get(f"{base}/api/analytics/live").json()["concurrent_users"] > 0,
            "simulated fans in the live metrics",
        )
        outbox = data_dir / "outbox"
        wait_until(lambda: outbox.is_dir() and any(outbox.glob("*.eml")), "a message in the outbox")
        servers = _servers_on(data_dir)
        assert len(servers) >= 3  # postmaster (and its workers), Valkey, the watchdog
        demo.send_signal(signal.SIGINT)
        _, stderr = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, stderr
    assert "synthetic world:" in stderr
    assert "50 users" in stderr
    assert stderr.count("local outbox") == 1  # said once
    assert "email provider switch" not in stderr  # no SMTP server that is not there
    _, alive = psutil.wait_procs(servers, timeout=20)
    assert alive == [], [p.info for p in alive]
    assert _servers_on(data_dir) == []
