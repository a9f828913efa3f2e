"""HTTP for tracking: our event endpoint, Segment and PostHog endpoints, reads, live metrics,
Prometheus `/metrics`. Thin: every decision is in `service`."""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, StringConstraints
from starlette.responses import Response

from mysetlist.core.auth import CurrentUser, OptionalUser
from mysetlist.core.errors import Problem, problem_responses
from mysetlist.core.runtime import Runtime, RuntimeDep
from mysetlist.core.state_metrics import read_state, render_state
from mysetlist.tracking import service
from mysetlist.tracking.config import load_tracking_settings
from mysetlist.tracking.contract import (
    TRACK_REQUEST_BODY,
    AnonymousIds,
    EventPage,
    EventsAccepted,
    LiveMetricsRead,
    PostHogAck,
    SegmentAck,
)
from mysetlist.tracking.errors import UnknownWriteKey
from mysetlist.tracking.monitoring import observe_response, render_metrics
from mysetlist.tracking.wire.validation import EventType


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime: Runtime = app.state.runtime
    ingest = service.IngestService(runtime, load_tracking_settings())
    await ingest.start()
    app.state.ingest = ingest
    try:
        yield
    finally:
        await ingest.stop()


router = APIRouter(lifespan=lifespan, tags=["tracking"])

# Route latency and status for every route of the app (api.py hands these to the core
# request middleware).
response_observers = [observe_response]


# async: FastAPI runs a plain-def dependency in a worker thread, a hop per request.
async def _ingest(request: Request) -> service.IngestService:
    ingest: service.IngestService = request.app.state.ingest
    return ingest


Ingest = Annotated[service.IngestService, Depends(_ingest)]

# What the ingest routes can answer besides 2xx: bad or oversized bodies and encodings,
# bad credentials, a limit reached, the queue full (backpressure).
_INGEST_PROBLEMS = problem_responses(400, 401, 403, 413, 415, 429, 503)


def _json(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _form_payload(body: bytes) -> tuple[bytes, str | None]:
    """The `data` field of a form-encoded body, and its `compression` field: posthog-js
    posts `data=<payload>&compression=base64` (and older versions `data=<json>`)."""
    try:
        form = urllib.parse.parse_qs(body.decode("ascii"), errors="strict")
        data = form["data"][0]
        payload = data.encode()
    except (UnicodeError, KeyError):
        raise Problem(
            400, "Bad Request", "a form-encoded body needs a data field of ASCII text"
        ) from None
    return payload, form.get("compression", [None])[0]


async def _body(request: Request, ingest: service.IngestService) -> bytes:
    body = await request.body()
    compression = request.query_params.get("compression")
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body, in_form = _form_payload(body)
        compression = compression or in_form
        if (compression or "").strip().lower() == "base64":
            body = body.replace(b" ", b"+")  # a '+' that a client left unescaped
    return service.decode_body(
        body,
        content_encoding=request.headers.get("content-encoding"),
        compression=compression,
        limit=ingest.body_limit,
    )


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# The hot path: the body is validated once (in `wire`), and the answer is written as is
# (a returned Response skips FastAPI's model pass; `response_model` only declares it).
@router.post(
    "/api/analytics/events",
    status_code=202,
    summary="Track one event or a batch ({'events': [...]}); 202 once committed",
    response_model=EventsAccepted,
    responses=_INGEST_PROBLEMS,
    openapi_extra=TRACK_REQUEST_BODY,
)
async def track_events(request: Request, claims: OptionalUser) -> Response:
    # The service straight from app state, not as a dependency: one less for FastAPI to
    # solve on the hottest route.
    ingest: service.IngestService = request.app.state.ingest
    result = await ingest.track(await _body(request, ingest), claims, _client_ip(request))
    return _json(202, {"accepted": result.accepted})


class CurrentIds(BaseModel):
    """The tokens a visitor holds, to renew (each optional)."""

    model_config = ConfigDict(extra="forbid")

    anonymous_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    session_id: Annotated[str, StringConstraints(max_length=200)] | None = None


@router.post(
    "/api/analytics/anonymous-id",
    summary="Server-signed anonymous and session ids for a visitor (no auth); send the current"
    " tokens to renew them (same ids, new expiry)",
    responses=problem_responses(400, 429),
)
async def issue_anonymous_ids(
    request: Request, response: Response, ingest: Ingest, current: CurrentIds | None = None
) -> AnonymousIds:
    ids = await ingest.issue_anonymous_ids(
        _client_ip(request), current.model_dump() if current else None
    )
    response.headers["Cache-Control"] = "no-store"  # each visitor's own; never shared
    return AnonymousIds.model_validate(ids)


@router.get(
    "/api/analytics/events",
    summary="The caller's events (operators: any user's)",
    responses=problem_responses(400, 401, 403),
)
async def list_events(
    runtime: RuntimeDep,
    claims: CurrentUser,
    user_id: Annotated[str | None, Query(max_length=64)] = None,
    event_type: Annotated[list[EventType] | None, Query()] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> EventPage:
    page = await service.list_events(
        runtime.db, claims, user_id=user_id, event_types=event_type,
        since=since, until=until, limit=limit, cursor=cursor,
    )  # fmt: skip
    return EventPage.model_validate(page)


@router.get(
    "/api/analytics/live",
    summary="Live metrics from Redis (status ok|degraded)",
    response_model=LiveMetricsRead,
    responses=problem_responses(),
)
async def live(ingest: Ingest) -> Any:
    return await ingest.live_metrics()


# -- Segment HTTP tracking API ----------------------------------------------------------------


def _basic_user(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


async def _with_write_key(
    request: Request, call: Callable[[service.IngestService, bytes], Awaitable[object]]
) -> None:
    """Run a write-key endpoint: 401 without a valid key. A client (IP) whose write keys keep
    failing is refused with 429 before the next key lookup, since each lookup of an unknown
    key reaches the database."""
    ingest = await _ingest(request)
    client = _client_ip(request)
    (await ingest.limiter.peek("auth_failure", client)).raise_if_refused("client's failed keys")
    try:
        await call(ingest, await _body(request, ingest))
    except UnknownWriteKey as exc:
        await ingest.limiter.hit("auth_failure", client)
        raise Problem(
            401, exc.title, exc.detail, headers={"WWW-Authenticate": 'Basic realm="write key"'}
        ) from None


async def _segment(request: Request, kind: str | None) -> Response:
    user = _basic_user(request)
    await _with_write_key(request, lambda ingest, body: ingest.segment(body, user, kind))
    return _json(200, {"success": True})


# Segment's and PostHog's bodies are their SDKs' wire formats (compressed, form-encoded),
# read and validated by `wire`; the schema declares what they answer.
@router.post(
    "/v1/batch",
    summary="Segment batch",
    response_model=SegmentAck,
    responses=_INGEST_PROBLEMS,
)
async def segment_batch(request: Request) -> Response:
    return await _segment(request, None)


@router.post(
    "/v1/{kind}",
    summary="Segment track/identify/page/screen/group/alias",
    response_model=SegmentAck,
    responses={**_INGEST_PROBLEMS, **problem_responses(404)},
)
async def segment_single(request: Request, kind: str) -> Response:
    if kind not in ("track", "identify", "page", "screen", "group", "alias"):
        raise Problem(404, "Not Found", f"no Segment call named {kind!r}")
    return await _segment(request, kind)


# -- PostHog capture API ----------------------------------------------------------------------


async def _posthog(request: Request) -> Response:
    await _with_write_key(request, lambda ingest, body: ingest.posthog(body))
    return _json(200, {"status": 1})


for _path in ("/batch/", "/i/v0/e/", "/e/", "/capture/", "/track/"):
    router.add_api_route(
        _path, _posthog, methods=["POST"], summary=f"PostHog capture ({_path})",
        response_model=PostHogAck, responses=_INGEST_PROBLEMS,
        include_in_schema=_path in ("/batch/", "/i/v0/e/"),
    )  # fmt: skip


# -- Prometheus -------------------------------------------------------------------------------


@router.get("/metrics", include_in_schema=False)
async def metrics(runtime: RuntimeDep) -> Response:
    # This process's metrics, then the database's state (core.state_metrics), read at
    # scrape time; a database that does not answer shows as mysetlist_state_metrics_up 0.
    reading = await read_state(runtime.database_url)
    body, content_type = render_metrics()
    return Response(body + render_state(reading), 200, media_type=content_type)
