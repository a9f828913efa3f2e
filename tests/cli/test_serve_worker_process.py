"""`mysetlist serve` runs the job worker as a supervised child process: the worker has its
own pid, a `kill -9` of it is followed by a new one that keeps running jobs, the API's
/metrics shows the worker's counters, and the worker dies with its parent. A standalone
`mysetlist worker --metrics-port` serves its own /metrics. A worker that keeps dying young
makes the supervisor give up (the command exits 1)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psutil
import psycopg
import pytest

from mysetlist.core import worker_supervisor
from mysetlist.core.worker_supervisor import WorkerSupervisor
from tests.conditions import wait_until
from tests.conftest import TEST_JWT_SECRET, free_port

IN_APP_DELIVERED = re.compile(
    r'^mysetlist_notify_deliveries_total\{(?=[^}]*channel="in_app")(?=[^}]*outcome="sent")'
    r"[^}]*\} (\S+)$",
    re.M,
)


def _env(database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    env = os.environ | {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "MYSETLIST_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def _new_user(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO app.users (display_name) VALUES ('serve test') RETURNING id"
        ).fetchone()
    assert row is not None
    return str(row[0])


def _registered_workers(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
    return int(row[0]) if row else 0


def _send_in_app(base: str, token_for: Any, user_id: str, title: str) -> None:
    service = {"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"}
    body = {"userId": user_id, "type": "account_notice", "title": title,
            "message": "m", "channels": ["in_app"]}  # fmt: skip
    response = httpx.post(f"{base}/api/notifications/send", json=body, headers=service)
    assert response.status_code == 202, response.text


def _wait_in_inbox(base: str, token_for: Any, user_id: str, title: str) -> None:
    headers = {"Authorization": f"Bearer {token_for(user_id)}"}

    def delivered() -> bool:
        page = httpx.get(f"{base}/api/notifications", headers=headers, timeout=10).json()
        return title in [n["title"] for n in page["notifications"]]

    wait_until(delivered, f"{title!r} delivered by the worker", within=60)


def _worker_children(pid: int) -> list[psutil.Process]:
    """The live `mysetlist worker` children of `pid` (a killed one not yet reaped is not)."""
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    alive = []
    for child in children:
        try:
            if "worker" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.Error:  # gone or a zombie meanwhile
            continue
    return alive


@pytest.mark.db
@pytest.mark.slow
def test_serve_runs_a_supervised_worker_process(
    database_url: str, redis_url: str, tmp_path: Path, token_for: Any
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = subprocess.Popen(
        [sys.executable, "-m", "mysetlist", "serve", "--port", str(port), "--log-format", "json"],
        env=_env(database_url, redis_url, tmp_path),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    worker_pid = None
    try:

        def listening() -> bool:
            assert serve.poll() is None, serve.communicate()[1]
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(listening, "serve to listen", within=60)
        (worker,) = wait_until(lambda: _worker_children(serve.pid), "the worker process")
        worker_pid = worker.pid
        assert worker_pid != serve.pid

        user = _new_user(database_url)
        _send_in_app(base, token_for, user, "before the kill")
        _wait_in_inbox(base, token_for, user, "before the kill")
        # The API runs no job: the delivery it shows was counted by the worker process.
        text = httpx.get(f"{base}/metrics").text
        match = IN_APP_DELIVERED.search(text)
        assert match is not None
        assert float(match.group(1)) >= 1

        os.kill(worker_pid, signal.SIGKILL)
        (again,) = wait_until(
            lambda: [c for c in _worker_children(serve.pid) if c.pid != worker_pid],
            "a new worker process",
        )
        worker_pid = again.pid
        _send_in_app(base, token_for, user, "after the kill")
        _wait_in_inbox(base, token_for, user, "after the kill")
        assert serve.poll() is None

        # SIGTERM stops both gracefully: the worker finishes and unregisters, then serve
        # exits as a SIGTERM'd command does (uvicorn re-raises the signal: 128 + 15).
        registered = _registered_workers(database_url)  # the killed one's row stays
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 143
        assert not psutil.pid_exists(worker_pid) or (
            psutil.Process(worker_pid).status() == psutil.STATUS_ZOMBIE
        )
        assert _registered_workers(database_url) == registered - 1
    finally:
        if serve.poll() is None:
            serve.kill()
        if worker_pid is not None and psutil.pid_exists(worker_pid):
            psutil.Process(worker_pid).kill()


# A parent holding a supervised child (`sleep`), which prints the child's pid.
_PARENT = """
import asyncio, os, sys, types
from mysetlist.core.worker_supervisor import WorkerSupervisor

async def main():
    supervisor = WorkerSupervisor([sys.executable, "-c", "import time; time.sleep(600)"],
                                  os.environ)
    task = asyncio.create_task(supervisor(types.SimpleNamespace(should_exit=False)))
    while supervisor.child is None:
        await asyncio.sleep(0.01)
    print(supervisor.child.pid, flush=True)
    await task

asyncio.run(main())
"""


def test_the_worker_dies_with_its_parent_even_on_kill_9() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert psutil.pid_exists(child_pid)
        parent.kill()  # no chance to clean up
        parent.wait(timeout=10)
        wait_until(
            lambda: (
                not psutil.pid_exists(child_pid)
                or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
            ),
            "the child to die with its parent",
        )
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.db
def test_a_standalone_worker_serves_its_own_metrics(
    database_url: str, redis_url: str, tmp_path: Path, token_for: Any, api_url: str
) -> None:
    port = free_port()
    worker = subprocess.Popen(
        [sys.executable, "-m", "mysetlist", "worker", "--log-format", "json"],
        env=_env(database_url, redis_url, tmp_path) | {"MYSETLIST_WORKER_METRICS_PORT": str(port)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        user = _new_user(database_url)
        _send_in_app(api_url, token_for, user, "standalone")
        _wait_in_inbox(api_url, token_for, user, "standalone")

        def counted() -> re.Match[str] | None:
            assert worker.poll() is None, worker.communicate()[1]
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.TransportError:
                return None
            return IN_APP_DELIVERED.search(text)

        match = wait_until(counted, "the worker's delivery counter on its /metrics")
        assert float(match.group(1)) >= 1
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.communicate(timeout=60)
        finally:
            if worker.poll() is None:
                worker.kill()
    assert worker.returncode == 0


async def test_a_worker_that_keeps_dying_young_stops_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_supervisor, "BACKOFF_FIRST_SECONDS", 0.01)
    dies = WorkerSupervisor([sys.executable, "-c", "raise SystemExit(3)"], os.environ)
    server = SimpleNamespace(should_exit=False)
    await asyncio.wait_for(dies(server), timeout=60)
    assert dies.failed
    assert server.should_exit
    assert dies.starts == worker_supervisor.QUICK_DEATHS_LIMIT
