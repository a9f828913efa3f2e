"""Sending (`POST /api/notifications/send`, for the service role and operators) and its
history, and the open pixel and tracked links of the emails sent."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import RedirectResponse, Response

from mysetlist.core.audit import audit_request
from mysetlist.core.auth import Operator
from mysetlist.core.errors import Problem, problem_responses
from mysetlist.core.runtime import RuntimeDep
from mysetlist.notify.delivery import sending, tracking
from mysetlist.notify.delivery.api_models import SendAccepted, SendHistory
from mysetlist.notify.route_dependencies import NotifySettingsDep, SignedLinksDep

router = APIRouter(
    tags=["notifications"], responses=problem_responses(401, 403, 404, 409, 413, 429)
)
BIGINT_MAX = 2**63 - 1  # ids are bigint: a larger one is a 422, not a database error
# A transparent 1x1 GIF.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
NO_STORE = {"Cache-Control": "no-store"}
# What the tracking routes answer, for the OpenAPI document (neither is JSON).
PIXEL_RESPONSE: dict[int | str, Any] = {200: {
    "description": "A transparent 1x1 GIF, whatever the token",
    "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}},
}}  # fmt: skip
REDIRECT_RESPONSE: dict[int | str, Any] = {302: {
    "description": "To the destination stored for this delivery's link",
    "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
}}  # fmt: skip


@router.post(
    "/api/notifications/send",
    status_code=202,
    responses={202: {"headers": {"Idempotent-Replayed": {
        "description": "true: a repeat of an earlier Idempotency-Key, answered as the first",
        "schema": {"type": "string", "enum": ["true"]},
    }}}},
)  # fmt: skip
async def send_notification(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    settings: NotifySettingsDep,
    claims: Operator,
    body: sending.SendRequest,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> SendAccepted:
    """Service role and operators: notify a user, a list or a segment. 202 once committed;
    a repeat of an Idempotency-Key answers the first result and sends nothing."""
    result, replayed = await sending.send(
        runtime.db, settings, claims, body, idempotency_key=idempotency_key
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        await audit_request(
            request, "notify.operator_send", actor=claims,
            target=("send_request", result.get("requestId")), details={"type": body.type},
        )  # fmt: skip
    return SendAccepted.model_validate(result)


@router.get("/api/notifications/send")
async def send_history(
    runtime: RuntimeDep,
    claims: Operator,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
    request_id: Annotated[int | None, Query(alias="requestId", ge=1, le=BIGINT_MAX)] = None,
) -> SendHistory:
    """Send requests, newest first, with per-channel delivery status counts."""
    rows = await sending.history(runtime.db, limit=limit, before=before, request_id=request_id)
    return SendHistory.model_validate({"requests": rows})


@router.get("/api/notifications/t/o/{token}.gif", summary="Email open pixel",
            response_class=Response, responses=PIXEL_RESPONSE)  # fmt: skip
async def track_open(runtime: RuntimeDep, links: SignedLinksDep, token: str) -> Response:
    delivery_id = links.read_open(token)
    if delivery_id is not None:
        await tracking.count_open(runtime.db, delivery_id)
    # The pixel either way: a broken image tells a forger nothing.
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/api/notifications/t/c/{token}", summary="Tracked email link", status_code=302,
            response_class=RedirectResponse, responses=REDIRECT_RESPONSE)  # fmt: skip
async def track_click(runtime: RuntimeDep, links: SignedLinksDep, token: str) -> Response:
    """Redirect to the destination stored for this delivery's link (never one in the URL)."""
    target = links.read_click(token)
    url = None if target is None else await tracking.count_click(runtime.db, *target)
    if url is None:
        raise Problem(404, "Not Found", "unknown link")
    return RedirectResponse(url, status_code=302, headers=NO_STORE)
