"""Quick guard (issue 18): small runs of the ingest, ETL and notify benches, one line of ratios.

Runs `bench/ingest_bench.py`, `bench/etl_bench.py` and `bench/notify_bench.py` one after
another with small flags (as subprocesses, reading each one's last JSON line) and prints

    ingest (b)/(a) · API and PostgreSQL CPU per event · single-event req/s and p99 at 1,000/s
    · ETL full/floor · incremental seconds · notify deliveries/s and CPU per delivery

in under 3 minutes on a 2-core machine. On a shared machine the wall-clock rates swing
with whatever else runs; the CPU-per-unit figures swing least, so compare those first.
Record the line before and after every change that touches a hot path.

    python bench/quick.py            # the small size, one line
    python bench/quick.py --json     # the same as one JSON object
    python bench/quick.py --size tiny --json   # seconds, for a smoke test: figures mean little

Servers: `DATABASE_URL` and `REDIS_URL` if both are set; otherwise an embedded PostgreSQL
and Valkey started here once for all three benches (notify_bench needs servers given to
it, and one server for all keeps the three runs alike).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

BENCH_DIR = Path(__file__).resolve().parent
SRC_DIR = BENCH_DIR.parent / "src"
# This tree's code, here and in the benches (an installed mysetlist may be another checkout).
sys.path.insert(0, str(SRC_DIR))

# Flags per bench and size. small: about 1.5 minutes on 2 cores (ingest ~20 s, ETL ~40 s,
# notify ~30 s, plus server starts); tiny: each bench end to end, as fast as it goes.
SIZES: dict[str, dict[str, list[str]]] = {
    "small": {
        "ingest": ["--events", "40000", "--single-seconds", "3", "--rate", "1000",
                   "--fixed-seconds", "5"],
        "etl": ["--users", "10000", "--days", "30"],
        "notify": ["--notifications", "3000"],
    },
    "tiny": {
        "ingest": ["--events", "2000", "--single-seconds", "1", "--rate", "1000",
                   "--fixed-seconds", "1", "--client-procs", "1", "--conns", "4"],
        "etl": ["--users", "200", "--days", "3"],
        "notify": ["--notifications", "100"],
    },
}  # fmt: skip
BENCH_TIMEOUT_SECONDS = 600


@contextlib.contextmanager
def servers(workdir: Path) -> Iterator[tuple[str, str, str]]:
    """(admin database URL, Redis URL, where they come from)."""
    admin, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if admin and redis_url:
        yield admin, redis_url, "env"
        return
    from mysetlist.core.embedded import EmbeddedPostgres, EmbeddedValkey

    pg, vk = EmbeddedPostgres(workdir), EmbeddedValkey(workdir)
    try:
        yield pg.start(), vk.start(), "embedded"
    finally:
        vk.stop()
        pg.stop()


def last_json(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = orjson.loads(line)
            return result
    raise ValueError("no JSON line in the bench's output")


def run_bench(name: str, script: str, flags: list[str], env: dict[str, str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / script), *flags],
        env=env, capture_output=True, text=True, timeout=BENCH_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    try:
        if proc.returncode != 0:
            raise ValueError(f"exit status {proc.returncode}")
        result = last_json(proc.stdout)
    except ValueError as exc:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise SystemExit(f"quick: {script} failed ({exc}); its last output:\n{tail}") from None
    print(f"  {name}: {wall:.0f} s", file=sys.stderr, flush=True)
    result["_wall_s"] = round(wall, 1)
    return result


def summarize(
    ingest: dict[str, Any], etl: dict[str, Any], notify: dict[str, Any]
) -> dict[str, Any]:
    """The guard's figures, flat; None where a bench does not report one (yet)."""
    return {
        "ingest_ratio": ingest.get("ratio"),
        "ingest_copy_eps": ingest.get("copy_eps"),
        "ingest_http_eps": ingest.get("http_eps"),
        "ingest_api_cpu_us_per_event": ingest.get("api_cpu_us_per_event"),
        "ingest_pg_cpu_us_per_event": ingest.get("pg_cpu_us_per_event"),
        "ingest_single_rps": ingest.get("single_rps"),
        "ingest_p99_ms_at_1000": ingest.get("p99_ms_at_1000"),
        "etl_events": etl.get("events"),
        "etl_full_s": etl.get("full_s"),
        "etl_floor_s": etl.get("floor_s"),
        "etl_full_over_floor": etl.get("full_over_floor"),
        "etl_incremental_s": etl.get("incremental_s"),
        "notify_deliveries_per_s": notify.get("deliveries_per_s"),
        "notify_api_cpu_us_per_notification": notify.get("api_cpu_per_notification_us"),
        "notify_worker_cpu_us_per_delivery": notify.get("worker_cpu_per_delivery_us"),
        "wall_s": {"ingest": ingest["_wall_s"], "etl": etl["_wall_s"], "notify": notify["_wall_s"]},
    }


def fmt(value: Any, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def one_line(s: dict[str, Any]) -> str:
    return (
        f"quick {s['date']} {s['size']} ({s['servers']} servers, load {s['load_before']:.1f}):"
        f" ingest (b)/(a) {fmt(s['ingest_ratio'], '.0%')}"
        f" [{fmt(s['ingest_http_eps'], ',')}/{fmt(s['ingest_copy_eps'], ',')} ev/s,"
        f" API {fmt(s['ingest_api_cpu_us_per_event'], '.1f', ' us')}/ev,"
        f" PG {fmt(s['ingest_pg_cpu_us_per_event'], '.1f', ' us')}/ev]"
        f" · single {fmt(s['ingest_single_rps'], ',', ' req/s')},"
        f" p99@1000 {fmt(s['ingest_p99_ms_at_1000'], '.1f', ' ms')}"
        f" · ETL full/floor {fmt(s['etl_full_over_floor'], '.1f', 'x')}"
        f" [{fmt(s['etl_full_s'], '.2f')}/{fmt(s['etl_floor_s'], '.2f')} s,"
        f" {fmt(s['etl_events'], ',')} events]"
        f" · incremental {fmt(s['etl_incremental_s'], '.2f', ' s')}"
        f" · notify {fmt(s['notify_deliveries_per_s'], ',.0f', '/s')}"
        f" [API {fmt(s['notify_api_cpu_us_per_notification'], '.0f', ' us')}/n,"
        f" worker {fmt(s['notify_worker_cpu_us_per_delivery'], '.0f', ' us')}/d]"
        f" · {s['total_wall_s']:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    args = parser.parse_args()
    flags = SIZES[args.size]
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="quick-bench-") as tmp,
        servers(Path(tmp)) as (admin, redis_url, origin),
    ):
        env = {
            **os.environ,
            "DATABASE_URL": admin,
            "REDIS_URL": redis_url,
            # the benches (and the API and worker they start) run this tree's code
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(SRC_DIR), os.environ.get("PYTHONPATH")])
            ),
        }
        ingest = run_bench("ingest", "ingest_bench.py", flags["ingest"], env)
        # its own database, dropped at the end, so a full-size run's world on the same
        # server is neither reused nor destroyed
        etl_db = ["--db", f"mysetlist_quick_etl_{os.getpid()}", "--drop"]
        etl = run_bench("etl", "etl_bench.py", [*flags["etl"], *etl_db], env)
        notify = run_bench("notify", "notify_bench.py", flags["notify"], env)
    summary = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "size": args.size,
        "servers": origin,
        "load_before": round(load_before, 2),
        **summarize(ingest, etl, notify),
        "total_wall_s": round(time.perf_counter() - started, 1),
    }
    print(orjson.dumps(summary).decode() if args.json else one_line(summary), flush=True)


if __name__ == "__main__":
    main()
