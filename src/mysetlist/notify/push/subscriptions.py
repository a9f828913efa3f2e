"""A user's browser push subscriptions, stored encrypted (the endpoint is a capability URL:
whoever has it and the keys can push to that browser) with a keyed hash of the endpoint for
lookups. A user keeps the newest `NOTIFY_PUSH_MAX_SUBSCRIPTIONS`."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from mysetlist.core.auth import Claims
from mysetlist.core.db import Database, fetch_one_in, lock_key, read_sql
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.notify.config import NotifySettings
from mysetlist.notify.errors import PushEndpointRefused, UnknownPushSubscription
from mysetlist.notify.push.channel import SUBSCRIPTION_CONTEXT
from mysetlist.notify.push.endpoints import EndpointPolicy, EndpointRefused

_PACKAGE = "mysetlist.notify.push"


@dataclass(frozen=True)
class Subscribed:
    id: int
    created: bool  # False: the browser subscribed again, its keys were replaced


async def check_endpoint(endpoint: str, settings: NotifySettings) -> None:
    """Our workers POST to this URL: it must be a push service at a public address
    (endpoints.py); checked again at every send."""
    try:
        await EndpointPolicy.from_settings(settings).check(endpoint)
    except EndpointRefused as exc:
        raise PushEndpointRefused(str(exc)) from None


async def subscribe(
    db: Database, cipher: FieldCipher, settings: NotifySettings, user_id: str, *,
    endpoint: str, p256dh: str, auth: str, user_agent: str | None,
) -> Subscribed:  # fmt: skip
    await check_endpoint(endpoint, settings)
    stored = orjson.dumps({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}})
    # The owner: an endpoint another account registered moves to the caller (the browser
    # proved it holds it by handing us its keys), a row RLS would hide from the caller.
    reason = "why: a push endpoint registered by another account moves to the caller"
    async with db.as_owner(reason) as conn:
        await conn.execute(
            read_sql(_PACKAGE, "lock_user_subscriptions.sql"),
            {"key": lock_key(f"notify.push_subscriptions:{user_id}")},
        )
        row = await fetch_one_in(
            conn, read_sql(_PACKAGE, "subscription_upsert.sql"),
            {"user_id": user_id,
             "endpoint_hash": cipher.lookup_hash(endpoint),
             "subscription": cipher.encrypt(stored.decode(), context=SUBSCRIPTION_CONTEXT),
             "user_agent": (user_agent or "").replace("\x00", "")[:300] or None},
        )  # fmt: skip
        await conn.execute(
            read_sql(_PACKAGE, "subscriptions_cap.sql"),
            {"user_id": user_id, "cap": settings.push_max_subscriptions},
        )
    assert row is not None
    return Subscribed(int(row["id"]), bool(row["created"]))


async def unsubscribe(db: Database, cipher: FieldCipher, claims: Claims, endpoint: str) -> None:
    """Remove the caller's own subscription (under RLS); UnknownPushSubscription when the
    caller has none with this endpoint."""
    async with db.as_caller(claims) as conn:
        row = await fetch_one_in(
            conn, read_sql(_PACKAGE, "subscription_delete.sql"),
            {"endpoint_hash": cipher.lookup_hash(endpoint), "user_id": claims.user_id},
        )  # fmt: skip
    if row is None:
        raise UnknownPushSubscription()
