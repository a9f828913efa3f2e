"""What the notify attack tests share: sends through the API, subscriptions written
straight into the database (as an attacker's row from before a check existed, or one
whose name resolves elsewhere today), and a deliverer with email and web push."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery.drain import Deliverer
from mysetlist.notify.push.channel import SUBSCRIPTION_CONTEXT, generate_vapid_keys
from tests.notify.conftest import notify_settings
from tests.notify.test_web_push import Browser, PushService

VAPID_PRIVATE, _ = generate_vapid_keys()


def service_headers(token_for: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"}


async def send(api_url: str, token_for: Any, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=api_url, headers=service_headers(token_for)) as c:
        return await c.post("/api/notifications/send", json=body)


async def store_subscription(
    runtime: Runtime, user_id: str, endpoint: str, keys: dict[str, str]
) -> int:
    """A subscription row written without the API (its checks skipped)."""
    stored = orjson.dumps({"endpoint": endpoint, "keys": keys}).decode()
    row = await runtime.db.fetch_one(
        """INSERT INTO app.push_subscriptions (user_id, endpoint_hash, subscription_encrypted)
           VALUES (%s, %s, %s) RETURNING id""",
        (user_id, runtime.cipher.lookup_hash(endpoint),
         runtime.cipher.encrypt(stored, context=SUBSCRIPTION_CONTEXT)),
    )  # fmt: skip
    assert row is not None
    return int(row["id"])


def push_deliverer(
    runtime: Runtime, smtp_port: int, *services: PushService, **overrides: Any
) -> Deliverer:
    """A deliverer sending email to the sink and push to `services` (the only origins
    exempt from the endpoint rules)."""
    settings = notify_settings(
        smtp_port, VAPID_PRIVATE_KEY=VAPID_PRIVATE, VAPID_SUBJECT="mailto:ops@mysetlist.example",
        NOTIFY_PUSH_TEST_ORIGINS=",".join(s.url for s in services), **overrides,
    )  # fmt: skip
    return Deliverer.build(
        settings, runtime.cipher, runtime.settings.effective_encryption_key, runtime.redis_url
    )


async def delivery_rows(runtime: Runtime, user_ids: list[str]) -> list[dict[str, Any]]:
    return await runtime.db.fetch_all(
        """SELECT d.*, n.type FROM notify.notification_delivery d
           JOIN notify.notifications n ON n.id = d.notification_id
           WHERE d.user_id = ANY(%s::uuid[]) ORDER BY d.id""",
        (user_ids,),
    )


__all__ = ["Browser", "PushService"]
