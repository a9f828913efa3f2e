"""`mysetlist worker` stops the way procrastinate means a worker to stop: on SIGTERM it takes
no new job, lets the running ones finish (within the grace period), unregisters and exits 0.
Before, the startup's SIGTERM handler raised SystemExit wherever the loop happened to be,
and a worker could sit out a deploy's whole kill timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psycopg
import pytest

from tests.conditions import wait_until

pytestmark = pytest.mark.db


def _registered_workers(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
    return int(row[0]) if row else 0


def test_sigterm_stops_the_worker_gracefully(database_url: str, redis_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    before = _registered_workers(database_url)
    worker = subprocess.Popen(
        [sys.executable, "-m", "mysetlist", "worker", "--log-format", "json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until(
            lambda: _registered_workers(database_url) > before or worker.poll() is not None,
            "the worker to register",
        )
        assert worker.poll() is None, worker.communicate()[0]
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, output
    assert _registered_workers(database_url) == before  # it unregistered on its way out
    assert "Traceback" not in output
