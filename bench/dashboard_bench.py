"""Dashboard benchmark: `GET /api/analytics/dashboard?range=30d` against a loaded world, through
a real uvicorn, as an operator.

- cold: the Redis copy deleted before each request, so every panel query runs (PostgreSQL's
  own buffer cache stays as warm as the previous request left it);
- warm: the answer served from Redis (`DASHBOARD_CACHE_SECONDS`);
- each panel's query alone, to show which one sets the cold time.

Goals (issue 11): p95 warm <= 100 ms, cold <= 1 s, on the warehouse benchmark's world.

    python bench/etl_bench.py --db mysetlist_dash_bench        # build and load a world once
    python bench/dashboard_bench.py --db mysetlist_dash_bench  # then measure the dashboard

`DATABASE_URL` names the server (the database is --db on it); `REDIS_URL` a Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
import uuid
from typing import Any

import httpx
import orjson
import redis
import uvicorn

from mysetlist.core.auth import mint_token
from mysetlist.core.config import load_settings
from mysetlist.core.db import Database, with_database
from mysetlist.dashboard import panels


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 0.5), 1),
        "p95_ms": round(percentile(values, 0.95), 1),
        "p99_ms": round(percentile(values, 0.99), 1),
        "max_ms": round(max(values), 1),
        "mean_ms": round(statistics.mean(values), 1),
    }


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


async def panel_times(url: str, range_: str, rounds: int) -> dict[str, float]:
    db = Database(url, max_size=2)
    await db.open()
    try:
        win = panels.window(range_, "UTC")
        out: dict[str, float] = {}
        for panel in panels.PANELS:
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                await panels.query_panel(db, panel, win, 60_000)
                times.append((time.perf_counter() - started) * 1000)
            out[panel.name] = round(statistics.median(times), 1)
        return out
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="mysetlist_etl_bench", help="database on DATABASE_URL")
    parser.add_argument("--range", default="30d", choices=list(panels.RANGES))
    parser.add_argument("--cold", type=int, default=30, help="cold requests")
    parser.add_argument("--warm", type=int, default=500, help="warm requests")
    args = parser.parse_args()

    server_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    url = with_database(server_url, args.db)
    prefix = f"dashbench-{uuid.uuid4().hex[:8]}"
    os.environ["MYSETLIST_REDIS_KEY_PREFIX"] = prefix
    settings = load_settings(DATABASE_URL=url, REDIS_URL=redis_url,
                             MYSETLIST_DATA_DIR=tempfile.mkdtemp(prefix="dashbench-"))  # fmt: skip
    from mysetlist.api import create_app

    port = 18000 + os.getpid() % 1000
    server = _Server(uvicorn.Config(create_app(settings, url, redis_url), host="127.0.0.1",
                                    port=port, log_config=None, access_log=False))  # fmt: skip
    threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the API did not start")
        time.sleep(0.05)
    token = mint_token(settings, str(uuid.uuid4()), admin=True)
    cache = redis.Redis.from_url(redis_url)
    endpoint = f"http://127.0.0.1:{port}/api/analytics/dashboard?range={args.range}"
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            cold, server_ms = [], []
            for _ in range(args.cold):
                for key in cache.scan_iter(f"{prefix}:dashboard:*"):
                    cache.delete(key)
                started = time.perf_counter()
                r = client.get(endpoint)
                cold.append((time.perf_counter() - started) * 1000)
                r.raise_for_status()
                server_ms.append(float(r.json()["query_ms"]))
            errors = [n for n, p in r.json()["panels"].items() if "error" in p]
            warm = []
            for _ in range(args.warm):
                started = time.perf_counter()
                r = client.get(endpoint)
                warm.append((time.perf_counter() - started) * 1000)
                r.raise_for_status()
        per_panel = asyncio.run(panel_times(url, args.range, 5))
    finally:
        server.should_exit = True
        for key in cache.scan_iter(f"{prefix}:*"):
            cache.delete(key)
    with psycopg_connect(url) as conn:
        events = conn.execute(
            "SELECT coalesce(sum(events), 0) FROM analytics.etl_loaded_days"
        ).fetchone()
    result: dict[str, Any] = {
        "range": args.range, "events_in_world": int(events[0]) if events else None,
        "cold": summary(cold), "cold_server_query_ms": summary(server_ms),
        "warm": summary(warm), "panel_errors": errors,
        "slowest_panels_ms": dict(sorted(per_panel.items(), key=lambda kv: -kv[1])[:6]),
    }  # fmt: skip
    print(f"world: {result['events_in_world']:,} events loaded; range {args.range}")
    print(f"cold  (no Redis copy): p50 {result['cold']['p50_ms']} ms, "
          f"p95 {result['cold']['p95_ms']} ms (goal <= 1000)")  # fmt: skip
    print(f"warm  (from Redis):    p50 {result['warm']['p50_ms']} ms, "
          f"p95 {result['warm']['p95_ms']} ms (goal <= 100)")  # fmt: skip
    print("slowest panel queries (median ms):", result["slowest_panels_ms"])
    print(orjson.dumps(result).decode())


def psycopg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url)


if __name__ == "__main__":
    main()
