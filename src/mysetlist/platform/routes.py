"""The caller's own platform data, read and changed under row-level security."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from mysetlist.core.auth import CurrentUser
from mysetlist.core.errors import Problem, problem_responses
from mysetlist.core.runtime import RuntimeDep
from mysetlist.platform import service

router = APIRouter(prefix="/api/me", tags=["platform"], responses=problem_responses(401))


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


class FollowedArtist(BaseModel):
    artist_id: int
    name: str
    genres: list[str]
    created_at: datetime = Field(description="when the caller followed the artist")


class Follows(BaseModel):
    follows: list[FollowedArtist]


_NO_PROFILE = "no profile for this user"


@router.get("", responses=problem_responses(404))
async def me(runtime: RuntimeDep, claims: CurrentUser) -> Profile:
    async with runtime.db.as_caller(claims) as conn:
        profile = await service.my_profile(conn)
    if profile is None:
        raise Problem(404, "Not Found", _NO_PROFILE)
    return Profile.model_validate(profile)


@router.patch("", responses=problem_responses(404))
async def change_me(runtime: RuntimeDep, claims: CurrentUser, change: ProfileChange) -> Profile:
    """Change the caller's own profile settings (today: `discoverable`)."""
    async with runtime.db.as_caller(claims) as conn:
        changed = await service.set_discoverable(conn, change.discoverable)
        profile = await service.my_profile(conn) if changed else None
    if profile is None:
        raise Problem(404, "Not Found", _NO_PROFILE)
    return Profile.model_validate(profile)


@router.get("/follows")
async def my_follows(runtime: RuntimeDep, claims: CurrentUser) -> Follows:
    async with runtime.db.as_caller(claims) as conn:
        return Follows.model_validate({"follows": await service.my_follows(conn)})
