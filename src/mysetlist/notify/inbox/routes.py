"""The in-app inbox: `GET /api/notifications`, unread count, mark read, mark all read, and
`GET /api/notifications/stream` (Server-Sent Events). All under the caller's RLS. The
stream's token comes from the Authorization header or, since a browser's EventSource cannot
set headers, the `mysetlist_access_token` cookie; never from the URL (URLs end up in logs).
The stream only reads, so a cookie needs no CSRF token; reading it cross-site would need a
CORS allowance (MYSETLIST_CORS_ORIGINS)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from mysetlist.core.auth import AuthError, Claims, CurrentUser, OptionalUser, TokenVerifier
from mysetlist.core.db import mark_caller_request
from mysetlist.core.errors import Problem, problem_responses
from mysetlist.core.runtime import RuntimeDep
from mysetlist.notify.inbox import service as inbox
from mysetlist.notify.inbox.api_models import InboxPage, MarkedAllRead, MarkedRead, UnreadCount

log = logging.getLogger(__name__)
router = APIRouter(tags=["notifications"], responses=problem_responses(401, 403, 404, 413, 429))
ACCESS_COOKIE = "mysetlist_access_token"
KEEPALIVE_SECONDS = 15.0
STREAM_BATCH = 100


def _hub(request: Request, runtime: RuntimeDep) -> inbox.InboxHub:
    """One LISTEN connection per API process, opened at the first stream."""
    state = request.app.state
    if getattr(state, "notify_inbox_hub", None) is None:
        state.notify_inbox_hub = inbox.InboxHub(
            runtime.direct_url, pool_size=runtime.settings.db_pool_max,
            revocations=runtime.revocations,
        )  # fmt: skip
    hub: inbox.InboxHub = state.notify_inbox_hub
    return hub


@router.get("/api/notifications")
async def list_notifications(
    runtime: RuntimeDep,
    claims: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,  # ids are bigint
    unread: Annotated[bool, Query()] = False,
) -> InboxPage:
    """The caller's in-app notifications, newest first; `before` pages back by id."""
    db = runtime.db
    items = await inbox.list_inbox(db, claims, limit=limit, before=before, unread_only=unread)
    return InboxPage.model_validate(
        {"notifications": items, "unreadCount": await inbox.unread_count(db, claims)}
    )


@router.get("/api/notifications/unread-count")
async def unread_count(runtime: RuntimeDep, claims: CurrentUser) -> UnreadCount:
    return UnreadCount(unreadCount=await inbox.unread_count(runtime.db, claims))


@router.post("/api/notifications/{notification_id}/read")
async def mark_read(
    runtime: RuntimeDep, claims: CurrentUser, notification_id: Annotated[int, Path(ge=1, le=2**62)]
) -> MarkedRead:
    """Idempotent; another user's notification is a 404 like an unknown one."""
    row = await inbox.mark_read(runtime.db, claims, notification_id)
    if row is None:
        raise Problem(404, "Not Found", "no such notification")
    return MarkedRead(id=row["id"], readAt=row["read_at"])


@router.post("/api/notifications/read-all")
async def mark_all_read(runtime: RuntimeDep, claims: CurrentUser) -> MarkedAllRead:
    return MarkedAllRead(marked=await inbox.mark_all_read(runtime.db, claims))


async def stream_caller(request: Request, bearer: OptionalUser) -> Claims:
    if bearer is not None:
        return bearer
    token = request.cookies.get(ACCESS_COOKIE)
    if not token:
        raise AuthError("a bearer token or the access token cookie is required")
    verifier: TokenVerifier = request.app.state.verifier
    claims = verifier.verify(token)
    mark_caller_request(claims.user_id, claims.role)  # a fan's request, like a bearer one
    return claims


@router.get(
    "/api/notifications/stream",
    response_class=StreamingResponse,
    responses={200: {
        "description": "Server-Sent Events: `event: notification`, `id:` the notification's"
        " id, `data:` an InboxItem (JSON); comments keep the connection alive",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }},
)  # fmt: skip
async def stream(
    request: Request,
    runtime: RuntimeDep,
    hub: Annotated[inbox.InboxHub, Depends(_hub)],
    claims: Annotated[Claims, Depends(stream_caller)],
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    """New in-app notifications as they are delivered. Resumes after `Last-Event-ID`;
    without it, starts from now (the inbox endpoint has the history). Ends with
    `event: revoked` when the caller's tokens are revoked."""
    if last_event_id is not None and not (last_event_id.isdigit() and len(last_event_id) < 19):
        raise Problem(400, "Bad Request", "Last-Event-ID must be a notification id")
    db = runtime.db

    async def events() -> AsyncIterator[bytes]:
        # Subscribed before the first read, so a delivery committed meanwhile wakes us.
        async with hub.subscribe(claims.user_id) as subscription:
            cursor = int(last_event_id) if last_event_id else await hub.newest_id(db, claims)
            if last_event_id:  # what was missed, at once (without it: from now on)
                subscription.woken.set()
            yield b"retry: 3000\n: connected\n\n"
            unread_failed = False  # a read met a lost connection: read again at the keepalive
            while not await request.is_disconnected():
                try:
                    await asyncio.wait_for(subscription.woken.wait(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keepalive\n\n"  # costs no query
                    if not unread_failed:
                        continue
                subscription.woken.clear()  # before reading, so a wake during it is kept
                if hub.is_revoked(claims):
                    yield inbox.SSE_REVOKED
                    return
                try:
                    while True:
                        items = await hub.read_after(db, claims, cursor, STREAM_BATCH)
                        for item in items:
                            cursor = item["id"]
                            yield inbox.sse_event(item)
                        if len(items) < STREAM_BATCH:
                            break
                    unread_failed = False
                except psycopg.OperationalError as exc:
                    # The database restarted (the pool drops the dead connection): the stream
                    # stays open and reads again at its next keepalive.
                    log.info("inbox stream read failed (%s); retrying at the next keepalive",
                             type(exc).__name__)  # fmt: skip
                    unread_failed = True

    return StreamingResponse(
        events(), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )  # fmt: skip
