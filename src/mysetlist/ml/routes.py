"""HTTP routes of the ML capability: the predicted setlist of a show, artist and show
recommendations, similar fans."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from pydantic import Field

from mysetlist.core.audit import client_ip
from mysetlist.core.auth import Claims, optional_claims, required_claims
from mysetlist.core.errors import problem_responses

# The one rate limiter of the code base (`limits` on Redis); its `anonymous` scope counts per
# client IP. A limiter of its own (own Redis keys) so public reads and ingest do not share a
# budget.
from mysetlist.core.rate_limit import RateLimiter
from mysetlist.core.runtime import Runtime, RuntimeDep
from mysetlist.ml.config import load_ml_settings
from mysetlist.ml.contract import (
    Leaderboard,
    PredictedSetlist,
    Recommendations,
    SimilarFans,
    SimilarUsersRequest,
)
from mysetlist.ml.recommendations import service as recommendation_service
from mysetlist.ml.setlists import prediction_service
from mysetlist.ml.setlists.prediction_cache import PredictionCache, prediction_cache


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime: Runtime = app.state.runtime
    limit = load_ml_settings().anonymous_read_rate_limit
    app.state.ml_anonymous_reads = RateLimiter(
        runtime.redis_url, anonymous=limit, write_key=limit, user=limit,
        key_prefix=f"{runtime.settings.redis_key_prefix}:ml-reads",
    )  # fmt: skip
    app.state.ml_prediction_cache = prediction_cache(runtime)
    yield


router = APIRouter(lifespan=lifespan, tags=["setlists"])


async def public_reader(
    request: Request, claims: Annotated[Claims | None, Depends(optional_claims)]
) -> Claims | None:
    """The caller's claims; an anonymous caller counts against the per-IP limit on public
    reads first (429 with Retry-After beyond it)."""
    if claims is None:
        limiter: RateLimiter = request.app.state.ml_anonymous_reads
        decision = await limiter.hit("anonymous", client_ip(request) or "unknown")
        decision.raise_if_refused("address")
    return claims


@router.get(
    "/api/shows/{show_id}/predicted-setlist",
    response_model=PredictedSetlist,
    responses=problem_responses(401, 404, 429),
)
async def predicted_setlist(
    request: Request,
    runtime: RuntimeDep,
    show_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    claims: Annotated[Claims | None, Depends(public_reader)],
    blend: Annotated[Literal["crowd"] | None, Query()] = None,
) -> Response:
    """The show's songs ranked by the chance each is played, the predicted length and a
    reason per song; `?blend=crowd` mixes in the fans' votes. Upcoming shows are public."""
    cache: PredictionCache = request.app.state.ml_prediction_cache
    answer = await prediction_service.predicted_setlist(
        runtime.db, cache, show_id, blend=blend == "crowd", claims=claims
    )
    # Already shaped as a PredictedSetlist (and cached so): serialized, not validated again.
    return Response(orjson.dumps(answer), media_type="application/json")


@router.get("/api/setlists/leaderboard", responses=problem_responses(401, 429))
async def leaderboard(
    runtime: RuntimeDep,
    claims: Annotated[Claims | None, Depends(public_reader)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Leaderboard:
    """The fans who predict setlists best (mean F1 over 3+ played shows), public: only fans
    who chose to be discoverable, plus the caller's own row (`is_you`)."""
    # Scores the ETL wrote, none by this caller's request: the replica may answer.
    reader = await runtime.db.reader()
    leaders = await prediction_service.leaderboard(reader, limit=limit, claims=claims)
    return Leaderboard.model_validate({"leaders": leaders})


# Both recommendation routes answer a signed-in caller about themself (operators: anyone).
_RECOMMENDATIONS: dict[str, Any] = {
    "path": "/api/analytics/recommendations",
    "tags": ["recommendations"],
    "responses": problem_responses(401, 403, 404),
}
SignedIn = Annotated[Claims, Depends(required_claims)]


@router.get(**_RECOMMENDATIONS, response_model=Recommendations)
async def recommendations(
    runtime: RuntimeDep,
    claims: SignedIn,
    type: Annotated[Literal["artists", "shows"], Query()] = "artists",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    user_id: Annotated[uuid.UUID | None, Query(description="operators only")] = None,
    genres: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]] | None,
        Query(max_length=20, description="chosen genres, for users with no history yet"),
    ] = None,
) -> Any:
    """Artists for the caller (or, for an operator, any user) with a score and a reason
    each, never one they follow; `type=shows`: upcoming shows of those artists."""
    return await recommendation_service.recommendations(
        runtime, load_ml_settings(), claims,
        user_id=None if user_id is None else str(user_id), kind=type, limit=limit,
        genres=genres or [],
    )  # fmt: skip


@router.post(**_RECOMMENDATIONS, response_model_exclude_none=True)
async def similar_users(
    runtime: RuntimeDep,
    claims: SignedIn,
    body: SimilarUsersRequest | None = None,
) -> SimilarFans:
    """Fans most similar to the caller (operators: to any user), with the artists shared:
    only fans who chose to be discoverable, by display name (ids for operators only)."""
    body = body or SimilarUsersRequest()
    return SimilarFans.model_validate(
        await recommendation_service.similar_users(
            runtime, load_ml_settings(), claims,
            user_id=None if body.user_id is None else str(body.user_id), limit=body.limit,
        )
    )  # fmt: skip
