"""Liveness, readiness and the state of our dependencies.

Readiness is what the instance can serve: every durable path (ingest, reads, the ETL) needs
the database, none needs Redis (live metrics and rate limits degrade without it, ingest goes
on), so `/readyz` answers 503 only when the database does not answer. A load balancer must
not take healthy instances out because Redis is down. `/healthz` (liveness: always 200 while
the process serves) reports each dependency, and `mysetlist_dependency_up` carries the same
to `/metrics`, refreshed by `monitor_dependencies` while the app runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Gauge

from mysetlist.core.runtime import Runtime

router = APIRouter(tags=["health"])

PROBE_TIMEOUT_SECONDS = 2.0
MONITOR_INTERVAL_SECONDS = 10.0

DEPENDENCY_UP = Gauge(
    "mysetlist_dependency_up",
    "1 when the dependency answered this process's last probe, else 0",
    ["dependency"],
    multiprocess_mode="livemin",  # across workers: down if any worker cannot reach it
)


async def _probe_database(runtime: Runtime) -> None:
    async with runtime.db.pool.connection(timeout=PROBE_TIMEOUT_SECONDS) as conn:
        await conn.execute("SELECT 1")


async def _probe_redis(runtime: Runtime) -> None:
    await runtime.redis.ping()


async def probe_dependencies(runtime: Runtime) -> dict[str, str]:
    """ "ok" or "error: <type>" per dependency, probed side by side; updates the gauge."""
    names = ("database", "redis")
    results = await asyncio.gather(
        *(
            asyncio.wait_for(probe(runtime), timeout=PROBE_TIMEOUT_SECONDS + 0.5)
            for probe in (_probe_database, _probe_redis)
        ),
        return_exceptions=True,
    )
    checks: dict[str, str] = {}
    for name, result in zip(names, results, strict=True):
        up = not isinstance(result, BaseException)
        checks[name] = "ok" if up else f"error: {type(result).__name__}"
        DEPENDENCY_UP.labels(name).set(1 if up else 0)
    return checks


async def monitor_dependencies(runtime: Runtime) -> None:
    """Keep `mysetlist_dependency_up` current while nobody asks /healthz (a lifespan task)."""
    while True:
        await probe_dependencies(runtime)
        await asyncio.sleep(MONITOR_INTERVAL_SECONDS)


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    """Liveness with detail: "degraded" names a dependency that does not answer."""
    checks = await probe_dependencies(request.app.state.runtime)
    status = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
    return {"status": status, "checks": checks}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers; Redis being down is reported, not disqualifying."""
    checks = await probe_dependencies(request.app.state.runtime)
    ready = checks["database"] == "ok"
    return JSONResponse(
        {"ready": ready, "degraded": ready and checks["redis"] != "ok", "checks": checks},
        status_code=200 if ready else 503,
    )
