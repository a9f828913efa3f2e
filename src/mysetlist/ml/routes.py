"""HTTP routes of the ML capability: the predicted setlist of a show, artist and show
recommendations, similar fans."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from mysetlist.core.auth import Claims, optional_claims, required_claims
from mysetlist.core.runtime import Runtime
from mysetlist.ml.recommendations import service as recommendation_service
from mysetlist.ml.recommendations.config import recommendation_settings
from mysetlist.ml.setlists import prediction_service

router = APIRouter(tags=["setlists"])


@router.get("/api/shows/{show_id}/predicted-setlist")
async def predicted_setlist(
    request: Request,
    show_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    claims: Annotated[Claims | None, Depends(optional_claims)],
    blend: Annotated[Literal["crowd"] | None, Query()] = None,
) -> dict[str, Any]:
    """The show's songs ranked by the chance each is played, the predicted length and a
    reason per song; `?blend=crowd` mixes in the fans' votes. Upcoming shows are public."""
    runtime: Runtime = request.app.state.runtime
    return await prediction_service.predicted_setlist(
        runtime.db, show_id, blend=blend == "crowd", claims=claims
    )


@router.get("/api/setlists/leaderboard")
async def leaderboard(
    request: Request,
    claims: Annotated[Claims | None, Depends(optional_claims)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The fans who predict setlists best (mean F1 over 3+ played shows), public."""
    runtime: Runtime = request.app.state.runtime
    return {"leaders": await prediction_service.leaderboard(runtime.db, limit=limit, claims=claims)}


@router.get("/api/analytics/recommendations", tags=["recommendations"])
async def recommendations(
    request: Request,
    claims: Annotated[Claims, Depends(required_claims)],
    type: Annotated[Literal["artists", "shows"], Query()] = "artists",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    user_id: Annotated[uuid.UUID | None, Query(description="operators only")] = None,
    genres: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]] | None,
        Query(max_length=20, description="chosen genres, for users with no history yet"),
    ] = None,
) -> dict[str, Any]:
    """Artists for the caller (or, for an operator, any user) with a score and a reason
    each, never one they follow; `type=shows`: upcoming shows of those artists."""
    runtime: Runtime = request.app.state.runtime
    return await recommendation_service.recommendations(
        runtime, recommendation_settings(), claims,
        user_id=None if user_id is None else str(user_id), kind=type, limit=limit,
        genres=genres or [],
    )  # fmt: skip


class SimilarUsersRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID | None = None  # another user: operators only
    limit: int = Field(default=10, ge=1, le=100)


@router.post("/api/analytics/recommendations", tags=["recommendations"])
async def similar_users(
    request: Request,
    claims: Annotated[Claims, Depends(required_claims)],
    body: SimilarUsersRequest | None = None,
) -> dict[str, Any]:
    """Fans most similar to the caller (operators: to any user), with the artists shared."""
    runtime: Runtime = request.app.state.runtime
    body = body or SimilarUsersRequest()
    return await recommendation_service.similar_users(
        runtime, recommendation_settings(), claims,
        user_id=None if body.user_id is None else str(body.user_id), limit=body.limit,
    )  # fmt: skip
