"""The caller's own platform data, read under row-level security."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from mysetlist.core.auth import CurrentUser
from mysetlist.core.errors import Problem
from mysetlist.core.runtime import Runtime
from mysetlist.platform import service

router = APIRouter(prefix="/api/me", tags=["platform"])


@router.get("")
async def me(request: Request, claims: CurrentUser) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    async with runtime.db.as_caller(claims) as conn:
        profile = await service.my_profile(conn)
    if profile is None:
        raise Problem(404, "Not Found", "no profile for this user")
    return profile


@router.get("/follows")
async def my_follows(request: Request, claims: CurrentUser) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    async with runtime.db.as_caller(claims) as conn:
        return {"follows": await service.my_follows(conn)}
