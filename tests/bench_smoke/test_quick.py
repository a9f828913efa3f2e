"""bench/quick.py end to end at its tiny size: the three benches run against the test
servers and every figure the guard line is made of comes back as a number. Fails when a
bench crashes, stops printing its last JSON line, or renames a key the guard reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import Servers

QUICK = Path(__file__).resolve().parents[2] / "bench" / "quick.py"

pytestmark = [pytest.mark.db, pytest.mark.slow]

# Figures the issue names for the guard (notify's CPU figures come with notify_bench's own).
REQUIRED = [
    "ingest_ratio", "ingest_copy_eps", "ingest_http_eps", "ingest_api_cpu_us_per_event",
    "ingest_single_rps", "ingest_p99_ms_at_1000", "etl_full_s", "etl_floor_s",
    "etl_full_over_floor", "etl_incremental_s", "notify_deliveries_per_s",
]  # fmt: skip


def test_quick_tiny_reports_every_figure(servers: Servers) -> None:
    env = {**os.environ, "DATABASE_URL": servers.admin_url, "REDIS_URL": servers.redis_url}
    done = subprocess.run(
        [sys.executable, str(QUICK), "--size", "tiny", "--json"],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = orjson.loads(done.stdout.splitlines()[-1])
    missing = {k: summary.get(k) for k in REQUIRED if not isinstance(summary.get(k), int | float)}
    assert not missing, missing
    assert all(summary[k] > 0 for k in REQUIRED), summary
    assert summary["servers"] == "env"
    # full/floor is the ratio of the two times it prints (rounded in the JSON)
    assert summary["etl_full_over_floor"] == pytest.approx(
        summary["etl_full_s"] / summary["etl_floor_s"], rel=0.2
    )
