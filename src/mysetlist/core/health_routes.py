"""Liveness, readiness and the state of our dependencies.

Readiness is what the instance can serve: every durable path (ingest, reads, the ETL) needs
the database, none needs Redis (live metrics and rate limits degrade without it, ingest goes
on), so `/readyz` answers 503 only when the database does not answer. A load balancer must
not take healthy instances out because Redis is down. `/healthz` (liveness: always 200 while
the process serves) reports each dependency, and `mysetlist_dependency_up` carries the same
to `/metrics`.

Both answer at once: `DependencyMonitor` probes in the background (a lifespan task) and the
routes read its last result; only readiness probes the database live, since it decides. A
probe of an unreachable Redis takes its connect timeout and client retries, longer than a
load balancer's or kubelet's probe timeout.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import Gauge
from pydantic import BaseModel, Field

from mysetlist.core.db import read_sql
from mysetlist.core.runtime import Runtime

router = APIRouter(tags=["health"])

PROBE_TIMEOUT_SECONDS = 2.0
MONITOR_INTERVAL_SECONDS = 5.0

DEPENDENCY_UP = Gauge(
    "mysetlist_dependency_up",
    "1 when the dependency answered this process's last probe, else 0",
    ["dependency"],
    multiprocess_mode="livemin",  # across workers: down if any worker cannot reach it
)


def _retrieved(task: asyncio.Future[None]) -> None:
    """A probe that outlived its timeout: its error was reported as "down" already."""
    if not task.cancelled():
        task.exception()


class DependencyMonitor:
    """The last known state of each dependency: "ok", "error: <type>" or "unknown"."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.checks: dict[str, str] = {"database": "unknown", "redis": "unknown"}

    async def _probe(self, name: str) -> str:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS + 0.5):
                if name == "database":
                    # Shielded: past the timeout the answer is "down" at once, and the query
                    # ends on its own. Cancelling it would make psycopg wait for the cancel,
                    # which never reaches a query pgbouncer holds waiting for a server.
                    probe = asyncio.ensure_future(self._query_database())
                    probe.add_done_callback(_retrieved)
                    await asyncio.shield(probe)
                else:
                    await self.runtime.redis.ping()
            state = "ok"
        except Exception as exc:  # any failure means "down"; its type says which
            state = f"error: {type(exc).__name__}"
        self.checks[name] = state
        DEPENDENCY_UP.labels(name).set(1 if state == "ok" else 0)
        return state

    async def _query_database(self) -> None:
        pool = self.runtime.db.pool
        async with pool.connection(timeout=PROBE_TIMEOUT_SECONDS) as conn:
            await conn.execute(read_sql("mysetlist.core", "health_probe.sql"))

    async def probe_database(self) -> str:
        return await self._probe("database")

    async def refresh(self) -> None:
        # The replica's lag gauge stays current even in a process that reads nothing there.
        await asyncio.gather(
            self._probe("database"), self._probe("redis"), self.runtime.db.check_replica()
        )

    async def run(self) -> None:
        """Probe every few seconds until cancelled (the app's lifespan)."""
        while True:
            await self.refresh()
            await asyncio.sleep(MONITOR_INTERVAL_SECONDS)


# async: FastAPI runs a plain-def dependency in a worker thread.
async def _monitor(request: Request) -> DependencyMonitor:
    monitor: DependencyMonitor = request.app.state.dependencies
    return monitor


Monitor = Annotated[DependencyMonitor, Depends(_monitor)]
_STATE = "`ok`, `unknown` (not probed yet) or `error: <exception type>`"


class DependencyChecks(BaseModel):
    database: str = Field(description=_STATE)
    redis: str = Field(description=_STATE)


class HealthStatus(StrEnum):
    ok = "ok"
    degraded = "degraded"


class Health(BaseModel):
    status: HealthStatus
    checks: DependencyChecks


class Readiness(BaseModel):
    ready: bool
    degraded: bool = Field(description="ready, but Redis does not answer")
    checks: DependencyChecks


@router.get("/healthz")
async def healthz(monitor: Monitor) -> Health:
    """Liveness with detail: "degraded" names a dependency that did not answer."""
    checks = dict(monitor.checks)
    degraded = any(v.startswith("error") for v in checks.values())
    return Health(
        status=HealthStatus.degraded if degraded else HealthStatus.ok,
        checks=DependencyChecks.model_validate(checks),
    )


@router.get(
    "/readyz",
    responses={503: {"model": Readiness, "description": "Not ready: the database does not answer"}},
)
async def readyz(monitor: Monitor, response: Response) -> Readiness:
    """Ready when the database answers; Redis being down is reported, not disqualifying."""
    ready = await monitor.probe_database() == "ok"
    checks = dict(monitor.checks)
    response.status_code = 200 if ready else 503
    return Readiness(
        ready=ready,
        degraded=ready and checks["redis"].startswith("error"),
        checks=DependencyChecks.model_validate(checks),
    )
