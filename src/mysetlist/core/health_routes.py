"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mysetlist.core.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    checks: dict[str, Any] = {}

    async def check_db() -> None:
        async with runtime.db.pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")

    async def check_redis() -> None:
        await runtime.redis.ping()

    for name, probe in (("database", check_db), ("redis", check_redis)):
        try:
            await asyncio.wait_for(probe(), timeout=2.5)
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready"
            checks[name] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
