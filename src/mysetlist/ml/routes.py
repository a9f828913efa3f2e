"""HTTP routes of the ML capability: the predicted setlist of a show."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from mysetlist.core.auth import Claims, optional_claims
from mysetlist.core.runtime import Runtime
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
