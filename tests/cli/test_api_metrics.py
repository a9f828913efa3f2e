"""`mysetlist api` in processes of its own: with `--workers 2` and PROMETHEUS_MULTIPROC_DIR,
/metrics, answered by either worker, counts the requests both served; with Redis down,
/metrics says so while /readyz keeps the instance in service."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.mmap_dict import MmapedDict

from tests.conditions import wait_until
from tests.conftest import TEST_JWT_SECRET, free_port

pytestmark = [pytest.mark.db, pytest.mark.slow]

HEALTHZ_200 = re.compile(
    r'^mysetlist_http_responses_total\{method="GET",route="/healthz",status="200"\} (\S+)$',
    re.M,
)


REDIS_UP = re.compile(r'^mysetlist_dependency_up\{dependency="redis"\} (\S+)$', re.M)


def _api_env(database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "MYSETLIST_DATA_DIR": str(tmp_path / "data"),
    }


def _stop(api: subprocess.Popen[str]) -> None:
    api.send_signal(signal.SIGINT)
    try:
        api.communicate(timeout=30)
    finally:
        if api.poll() is None:
            api.kill()


def test_metrics_report_redis_down_while_the_instance_stays_ready(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    nobody_listens = f"redis://127.0.0.1:{free_port()}/0"
    api = subprocess.Popen(
        [sys.executable, "-m", "mysetlist", "api", "--port", str(port)],
        env=_api_env(database_url, nobody_listens, tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        def redis_gauge() -> re.Match[str] | None:
            assert api.poll() is None, api.stderr.read() if api.stderr else ""
            try:
                return REDIS_UP.search(httpx.get(f"{base}/metrics", timeout=5).text)
            except httpx.TransportError:
                return None  # not listening yet

        gauge = wait_until(redis_gauge, "the Redis gauge on /metrics", within=60)
        assert float(gauge.group(1)) == 0.0
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["degraded"] is True
    finally:
        _stop(api)
    assert api.returncode == 0


def _healthz_served_by_pid(multiproc_dir: Path) -> dict[int, float]:
    """Per worker PID: how many GET /healthz its own metric file says it answered."""
    served: dict[int, float] = {}
    for path in multiproc_dir.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        # prometheus_client's own reader of these files (untyped)
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):  # type: ignore[no-untyped-call]
            name, _, labels, _ = json.loads(key)
            if name.startswith("mysetlist_http_responses") and labels.get("route") == "/healthz":
                served[pid] = served.get(pid, 0.0) + value
    return served


def test_metrics_add_up_across_api_workers(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    multiproc_dir = tmp_path / "prometheus"
    multiproc_dir.mkdir()
    port = free_port()
    env = _api_env(database_url, redis_url, tmp_path)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)
    api = subprocess.Popen(
        [sys.executable, "-m", "mysetlist", "api", "--workers", "2", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        sent = 0
        # New connection per request, so the kernel spreads them over the workers; go on
        # until both answered some (each worker's own file says so).
        while time.monotonic() < deadline and api.poll() is None:
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    sent += 1
            except httpx.TransportError:
                time.sleep(0.1)  # not listening yet
                continue
            served = _healthz_served_by_pid(multiproc_dir)
            if len(served) >= 2 and all(n > 0 for n in served.values()) and sent >= 20:
                break
        # A worker counts a response just after sending it: let the last one land.
        wait_until(
            lambda: sum(_healthz_served_by_pid(multiproc_dir).values()) >= sent,
            f"the workers' files to count all {sent} answers",
            within=10,
        )
        served = _healthz_served_by_pid(multiproc_dir)
        assert len([n for n in served.values() if n > 0]) == 2, (served, api.poll())
        # A request the client gave up on (a timeout on a busy machine) may still have been
        # served: the workers' own files are the truth, and at least every answered request.
        assert sum(served.values()) >= sent
        for _ in range(3):  # whichever worker answers /metrics counts both workers' requests
            match = HEALTHZ_200.search(httpx.get(f"{base}/metrics", timeout=5).text)
            assert match is not None
            assert float(match.group(1)) == sum(_healthz_served_by_pid(multiproc_dir).values())
        workers = psutil.Process(api.pid).children(recursive=True)
    finally:
        _stop(api)
    assert api.returncode == 0
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert alive == []
