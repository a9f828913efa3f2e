"""`POST/DELETE /api/notifications/push-subscriptions`: the caller's own browser push
subscriptions (subscriptions.py keeps them)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mysetlist.core.auth import CurrentUser
from mysetlist.core.errors import problem_responses
from mysetlist.core.runtime import RuntimeDep
from mysetlist.notify.push import subscriptions
from mysetlist.notify.push.api_models import PushSubscriptionRead
from mysetlist.notify.route_dependencies import NotifySettingsDep

router = APIRouter(
    tags=["notifications"], responses=problem_responses(401, 403, 404, 409, 413, 429)
)


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


@router.post(
    "/api/notifications/push-subscriptions",
    status_code=201,
    responses={200: {"model": PushSubscriptionRead, "description": "Re-subscribed: keys replaced"}},
)
async def subscribe(
    response: Response,
    runtime: RuntimeDep,
    settings: NotifySettingsDep,
    claims: CurrentUser,
    body: PushSubscriptionCreate,
    user_agent: Annotated[str | None, Header(alias="User-Agent")] = None,
) -> PushSubscriptionRead:
    """201 when new, 200 when the browser re-subscribed (its keys are replaced). A user
    keeps the newest NOTIFY_PUSH_MAX_SUBSCRIPTIONS (10) subscriptions."""
    subscribed = await subscriptions.subscribe(
        runtime.db, runtime.cipher, settings, claims.user_id, endpoint=body.endpoint,
        p256dh=body.keys.p256dh, auth=body.keys.auth, user_agent=user_agent,
    )  # fmt: skip
    if not subscribed.created:
        response.status_code = 200
    return PushSubscriptionRead(id=subscribed.id)


@router.delete(
    "/api/notifications/push-subscriptions",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Removed"}},
)
async def unsubscribe(
    runtime: RuntimeDep, claims: CurrentUser, body: PushSubscriptionDelete
) -> Response:
    await subscriptions.unsubscribe(runtime.db, runtime.cipher, claims, body.endpoint)
    return Response(status_code=204)
