"""bench/load.py (issue 19): the report writer on made-up figures (fast), and a bounded run
of 1,000 fans for a minute against the test servers (slow): no 5xx, every acknowledged
event stored, every owed email at the sink once, streams held."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from tests.conftest import Servers

BENCH = Path(__file__).resolve().parents[2] / "bench"
JSON_KEYS = {"users", "seconds", "sse_open_min", "requests", "status", "p99_ms", "events",
             "notifications"}  # fmt: skip


def _bench_module(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _made_up_run(report: Any) -> Any:
    stats = report.RunStats(t0=0.0)
    for i in range(200):
        t = 10.0 + i * 0.25
        stats.record(t, "POST /v1/batch", 200, 5.0 + i % 10)
        stats.record(t, "GET inbox", 500 if i == 7 else 200, 20.0 + i % 30)
    stats.record(1.0, "GET stream (open)", 200, 3.0)
    stats.samples = [{"t": float(t), "sse_open": 40 if t > 12 else 10, "gen_cpu": 20.0,
                      "loop_lag_ms": 1.0, "procs": {"api": (50.0, 200.0)}, "db_conns": 9,
                      "load": 1.5, "fans": 40} for t in range(2, 64, 2)]  # fmt: skip
    stats.full_load_from, stats.full_load_to = 10.0, 60.0
    stats.meta = {"users": 40, "started_utc": "now"}
    stats.reconciliation = {"acked": 600, "stored_of_acked": 600, "accepted": 30,
                            "delivered": 30, "duplicates": 0, "sink_lags": [0.1, 0.2],
                            "stream_lags": [0.05]}  # fmt: skip
    return report.summarise(stats)


def test_report_json_line_and_markers(tmp_path: Path) -> None:
    report = _bench_module("load_report")
    summary = _made_up_run(report)
    line = summary["json"]
    assert set(line) == JSON_KEYS
    assert line["status"] == {"2xx": 400, "4xx": 0, "5xx": 1}  # the stream's open is counted
    assert line["requests"] == 401
    assert set(line["p99_ms"]) == {"ingest", "reads"}
    assert line["p99_ms"]["ingest"] == 14.0
    assert line["sse_open_min"] == 40  # from 5 s after the ramp
    assert line["events"] == {"acked": 600, "stored": 600}
    assert line["notifications"] == {"accepted": 30, "delivered": 30, "duplicates": 0}
    orjson.dumps(line)
    docs = tmp_path / "performance.md"
    docs.write_text("# Performance\n\nbefore\n<!-- load-report:single:start -->\nold figures\n"
                    "<!-- load-report:single:end -->\nafter\n")  # fmt: skip
    report.write_report(summary, docs, tmp_path / "img", "single")
    report.write_report(summary, docs, tmp_path / "img", "chaos")  # no markers yet: appended
    text = docs.read_text()
    assert "old figures" not in text
    assert text.count("<!-- load-report:single:start -->") == 1
    assert text.count("<!-- load-report:chaos:end -->") == 1
    assert text.index("before") < text.index("load-report:single:start") < text.index("after")
    assert "](img/load-single-latency.png)" in text
    assert (tmp_path / "img" / "load-single-throughput.png").stat().st_size > 1000


@pytest.mark.db
@pytest.mark.slow
def test_thousand_fans_for_a_minute(servers: Servers) -> None:
    env = {**os.environ, "DATABASE_URL": servers.admin_url, "REDIS_URL": servers.redis_url}
    env.pop("API_URL", None)
    done = subprocess.run(
        [sys.executable, str(BENCH / "load.py"), "--users", "1000", "--minutes", "1", "--json",
         "--report", "none"],
        env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    line = orjson.loads(done.stdout.splitlines()[-1])
    assert set(line) == JSON_KEYS
    assert line["users"] == 1000
    assert line["status"]["5xx"] == 0, line
    assert line["events"]["acked"] > 0
    assert line["events"]["stored"] == line["events"]["acked"], line
    assert line["notifications"]["accepted"] > 0
    assert line["notifications"]["delivered"] == line["notifications"]["accepted"], line
    assert line["notifications"]["duplicates"] == 0, line
    assert line["sse_open_min"] > 0, line
