"""The caller's own platform data, read and changed under row-level security."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from mysetlist.core.auth import CurrentUser
from mysetlist.core.errors import Problem
from mysetlist.core.runtime import Runtime
from mysetlist.platform import service

router = APIRouter(prefix="/api/me", tags=["platform"])


class Profile(BaseModel):
    id: uuid.UUID
    display_name: str
    timezone: str
    locale: str
    discoverable: bool = Field(
        description="other fans may find you: similar fans, the setlist leaderboard"
    )
    created_at: datetime
    last_active_at: datetime | None


class ProfileChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    discoverable: StrictBool = Field(
        description="let other fans see your display name and followed artists (similar"
        " fans) and your row on the setlist leaderboard; off by default"
    )


_NO_PROFILE = "no profile for this user"


@router.get("")
async def me(request: Request, claims: CurrentUser) -> Profile:
    runtime: Runtime = request.app.state.runtime
    async with runtime.db.as_caller(claims) as conn:
        profile = await service.my_profile(conn)
    if profile is None:
        raise Problem(404, "Not Found", _NO_PROFILE)
    return Profile.model_validate(profile)


@router.patch("")
async def change_me(request: Request, claims: CurrentUser, change: ProfileChange) -> Profile:
    """Change the caller's own profile settings (today: `discoverable`)."""
    runtime: Runtime = request.app.state.runtime
    async with runtime.db.as_caller(claims) as conn:
        changed = await service.set_discoverable(conn, change.discoverable)
        profile = await service.my_profile(conn) if changed else None
    if profile is None:
        raise Problem(404, "Not Found", _NO_PROFILE)
    return Profile.model_validate(profile)


@router.get("/follows")
async def my_follows(request: Request, claims: CurrentUser) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    async with runtime.db.as_caller(claims) as conn:
        return {"follows": await service.my_follows(conn)}
