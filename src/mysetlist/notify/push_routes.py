"""`POST/DELETE /api/notifications/push-subscriptions`: the caller's own browser push
subscriptions, stored encrypted (the endpoint is a capability URL: whoever has it and the
keys can push to that browser) with a keyed hash of the endpoint for lookups."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mysetlist.core.auth import CurrentUser
from mysetlist.core.db import fetch_one_in, read_sql
from mysetlist.core.errors import Problem, problem_responses
from mysetlist.core.runtime import Runtime, RuntimeDep
from mysetlist.notify.api_models import PushSubscriptionRead
from mysetlist.notify.config import NotifySettings
from mysetlist.notify.push import SUBSCRIPTION_CONTEXT
from mysetlist.notify.push_endpoints import EndpointPolicy, EndpointRefused

router = APIRouter(
    tags=["notifications"], responses=problem_responses(401, 403, 404, 409, 413, 429)
)
_PACKAGE = "mysetlist.notify"


def _b64url_bytes(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("must be base64url") from None


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="ignore")
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        raw = _b64url_bytes(value)
        if len(raw) != 65 or raw[0] != 4:
            raise ValueError("must be an uncompressed P-256 public key (65 bytes, base64url)")
        return value

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(_b64url_bytes(value)) != 16:
            raise ValueError("must be a 16-byte secret, base64url")
        return value


class PushSubscriptionCreate(BaseModel):
    """What the browser's PushSubscription.toJSON() gives."""

    model_config = ConfigDict(extra="ignore")
    endpoint: str = Field(min_length=10, max_length=2048)
    keys: PushKeys


class PushSubscriptionDelete(BaseModel):
    model_config = ConfigDict(extra="ignore")
    endpoint: str = Field(min_length=10, max_length=2048)


def _settings(request: Request) -> NotifySettings:
    """The app's notify settings (a test gives its app its own: `Settings.with_variables`)."""
    runtime: Runtime = request.app.state.runtime
    return runtime.settings.of(NotifySettings)


async def _check_endpoint(endpoint: str, settings: NotifySettings) -> None:
    """Our workers POST to this URL: it must be a push service at a public address
    (notify/push_endpoints.py); checked again at every send."""
    try:
        await EndpointPolicy.from_settings(settings).check(endpoint)
    except EndpointRefused as exc:
        message = f"not a push service endpoint we send to: {exc}"
        raise Problem(
            422, "Unprocessable Content", f"endpoint: {message}",
            errors=[{"field": "endpoint", "message": message}],
        ) from None  # fmt: skip


@router.post(
    "/api/notifications/push-subscriptions",
    status_code=201,
    responses={200: {"model": PushSubscriptionRead, "description": "Re-subscribed: keys replaced"}},
)
async def subscribe(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    claims: CurrentUser,
    body: PushSubscriptionCreate,
    user_agent: Annotated[str | None, Header(alias="User-Agent")] = None,
) -> PushSubscriptionRead:
    """201 when new, 200 when the browser re-subscribed (its keys are replaced). A user
    keeps the newest NOTIFY_PUSH_MAX_SUBSCRIPTIONS (10) subscriptions."""
    settings = _settings(request)
    await _check_endpoint(body.endpoint, settings)
    stored = orjson.dumps(
        {"endpoint": body.endpoint, "keys": {"p256dh": body.keys.p256dh, "auth": body.keys.auth}}
    ).decode()
    async with runtime.db.transaction() as conn:
        # One subscribe at a time per user, so that the cap holds under concurrent ones.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"notify.push_subscriptions:{claims.user_id}",),
        )
        row = await fetch_one_in(
            conn, read_sql(_PACKAGE, "push_subscription_upsert.sql"),
            {"user_id": claims.user_id,
             "endpoint_hash": runtime.cipher.lookup_hash(body.endpoint),
             "subscription": runtime.cipher.encrypt(stored, context=SUBSCRIPTION_CONTEXT),
             "user_agent": (user_agent or "").replace("\x00", "")[:300] or None},
        )  # fmt: skip
        await conn.execute(
            read_sql(_PACKAGE, "push_subscriptions_cap.sql"),
            {"user_id": claims.user_id, "cap": settings.push_max_subscriptions},
        )
    assert row is not None
    if not row["created"]:
        response.status_code = 200
    return PushSubscriptionRead(id=row["id"])


@router.delete(
    "/api/notifications/push-subscriptions",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Removed"}},
)
async def unsubscribe(
    runtime: RuntimeDep, claims: CurrentUser, body: PushSubscriptionDelete
) -> Response:
    async with runtime.db.as_caller(claims) as conn:
        row: dict[str, Any] | None = await fetch_one_in(
            conn, read_sql(_PACKAGE, "push_subscription_delete.sql"),
            {"endpoint_hash": runtime.cipher.lookup_hash(body.endpoint),
             "user_id": claims.user_id},
        )  # fmt: skip
    if row is None:
        raise Problem(404, "Not Found", "no such push subscription of yours")
    return Response(status_code=204)
