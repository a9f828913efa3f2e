"""Web push end to end: subscriptions through the API (encrypted at rest, the caller's own),
deliveries through the drain to local push services that DECRYPT what they receive (RFC
8291 aes128gcm with the browser's keys) and check the VAPID token; 410 deletes the
subscription, 429 retries after Retry-After, idle subscriptions expire."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import http_ece
import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery.drain import Deliverer
from mysetlist.notify.push.channel import MAX_PAYLOAD_BYTES, generate_vapid_keys, payload
from tests.conftest import serve_app
from tests.notify.conftest import notify_settings

pytestmark = pytest.mark.db


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Browser:
    """A browser's side of a subscription: its ECDH key and auth secret."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: uuid.uuid4().bytes)

    def keys(self) -> dict[str, str]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}

    def decrypt(self, body: bytes) -> Any:
        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return orjson.loads(plain)


@dataclass
class PushService:
    """A local push service: records each POST; answers per path (201 unless told)."""

    url: str = ""
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    answers: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)

    async def push(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.received.append((name, dict(request.headers), await request.body()))
        status, headers = self.answers.get(name, (201, {}))
        return Response(status_code=status, headers=headers)

    def to(self, name: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for n, h, b in self.received if n == name]


def start_push_service() -> Iterator[PushService]:
    service = PushService()
    app = Starlette(routes=[Route("/push/{name}", service.push, methods=["POST"])])
    with serve_app(app) as url:
        service.url = url
        yield service


@pytest.fixture(scope="module")
def push_a() -> Iterator[PushService]:
    yield from start_push_service()


@pytest.fixture(scope="module")
def push_b() -> Iterator[PushService]:
    yield from start_push_service()


def push_test_origins(*services: PushService) -> str:
    """NOTIFY_PUSH_TEST_ORIGINS naming exactly these local push services (on loopback,
    plain http): the explicit test-only exemption; the defaults stay strict."""
    return ",".join(service.url for service in services)


@pytest.fixture(scope="module")
def push_api(
    settings: Settings, database_url: str, redis_url: str, push_a: PushService,
    push_b: PushService,
) -> Iterator[str]:  # fmt: skip
    """The API taking the local push services' endpoints."""
    from mysetlist.api import create_app

    ours = settings.with_variables(NOTIFY_PUSH_TEST_ORIGINS=push_test_origins(push_a, push_b))
    app = create_app(ours, database_url, redis_url, with_worker=False)
    with serve_app(app) as url:
        yield url


VAPID_PRIVATE, VAPID_PUBLIC = generate_vapid_keys()


@pytest.fixture
async def push_deliverer(
    runtime: Runtime, push_a: PushService, push_b: PushService
) -> AsyncIterator[Deliverer]:
    settings = notify_settings(
        1, VAPID_PRIVATE_KEY=VAPID_PRIVATE, VAPID_SUBJECT="mailto:ops@mysetlist.example",
        NOTIFY_PUSH_TEST_ORIGINS=push_test_origins(push_a, push_b),
    )  # fmt: skip
    built = Deliverer.build(
        settings, runtime.cipher, runtime.settings.effective_encryption_key, runtime.redis_url
    )
    yield built
    await built.close()


async def subscribe(api: str, token: str, endpoint: str, browser: Browser) -> httpx.Response:
    async with httpx.AsyncClient(base_url=api) as c:
        return await c.post(
            "/api/notifications/push-subscriptions",
            json={"endpoint": endpoint, "keys": browser.keys(), "expirationTime": None},
            headers={"Authorization": f"Bearer {token}"},
        )


async def send_push(api: str, token_for: Any, user_id: str, title: str, message: str) -> None:
    async with httpx.AsyncClient(base_url=api) as c:
        r = await c.post(
            "/api/notifications/send",
            json={"userId": user_id, "type": "account_notice", "title": title,
                  "message": message, "data": {"showId": 7}, "channels": ["push"]},
            headers={"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"},
        )  # fmt: skip
        assert r.status_code == 202, r.text


async def push_delivery(runtime: Runtime, user_id: str) -> dict[str, Any]:
    row = await runtime.db.fetch_one(
        "SELECT * FROM notify.notification_delivery WHERE user_id = %s AND channel = 'push'",
        (user_id,),
    )
    assert row is not None
    return row


async def test_subscriptions_are_the_callers_own_and_encrypted(
    push_api: str, push_a: PushService, token_for: Any, make_users: Any, runtime: Runtime
) -> None:
    api_url = push_api
    alice, bob = await make_users(2)
    browser = Browser()
    endpoint = f"{push_a.url}/push/{uuid.uuid4()}"
    first = await subscribe(api_url, token_for(alice.id), endpoint, browser)
    again = await subscribe(api_url, token_for(alice.id), endpoint, browser)
    assert (first.status_code, again.status_code) == (201, 200), first.text
    row = await runtime.db.fetch_one(
        "SELECT * FROM app.push_subscriptions WHERE user_id = %s", (alice.id,)
    )
    assert row is not None
    assert endpoint.encode() not in bytes(row["subscription_encrypted"])
    assert bytes(row["endpoint_hash"]) == runtime.cipher.lookup_hash(endpoint)

    bad_key = await subscribe(api_url, token_for(alice.id), endpoint, Browser())
    assert bad_key.status_code == 200  # a re-subscription with new keys replaces them
    broken = {"p256dh": "AAAA", "auth": browser.keys()["auth"]}
    async with httpx.AsyncClient(base_url=api_url) as c:
        as_alice = {"Authorization": f"Bearer {token_for(alice.id)}"}
        r = await c.post("/api/notifications/push-subscriptions", headers=as_alice,
                         json={"endpoint": endpoint, "keys": broken})  # fmt: skip
        assert r.status_code == 422
        assert "p256dh" in r.text
        # Our workers POST to the endpoint: plain http is refused (SSRF into internal hosts).
        http = await subscribe(api_url, token_for(alice.id), "http://10.0.0.1/x/y", browser)
        assert http.status_code == 422
        # Bob cannot remove Alice's subscription; Alice can.
        as_bob = {"Authorization": f"Bearer {token_for(bob.id)}"}
        gone = await c.request("DELETE", "/api/notifications/push-subscriptions",
                               json={"endpoint": endpoint}, headers=as_bob)  # fmt: skip
        assert gone.status_code == 404
        gone = await c.request("DELETE", "/api/notifications/push-subscriptions",
                               json={"endpoint": endpoint}, headers=as_alice)  # fmt: skip
        assert gone.status_code == 204
        anonymous = await c.post("/api/notifications/push-subscriptions",
                                 json={"endpoint": endpoint, "keys": browser.keys()})  # fmt: skip
        assert anonymous.status_code == 401


async def test_push_reaches_each_browser_decryptably_with_fresh_vapid_claims(
    push_api: str, push_a: PushService, push_b: PushService, token_for: Any, make_users: Any,
    runtime: Runtime, push_deliverer: Deliverer,
) -> None:  # fmt: skip
    (user,) = await make_users(1)
    phone, laptop = Browser(), Browser()
    name = uuid.uuid4().hex
    # Two push services on two origins: a claims dict shared between calls would carry
    # the first one's audience to the second.
    for service, browser in ((push_a, phone), (push_b, laptop)):
        r = await subscribe(push_api, token_for(user.id), f"{service.url}/push/{name}", browser)
        assert r.status_code == 201, r.text
    long_message = "é" * 4000  # over the 3,993-byte limit once encoded
    await send_push(push_api, token_for, user.id, "Doors at 8", long_message)
    await push_deliverer.drain(runtime.db)

    for service, browser in ((push_a, phone), (push_b, laptop)):
        ((headers, body),) = service.to(name)
        assert headers["content-encoding"] == "aes128gcm"
        assert int(headers["ttl"]) > 0
        assert len(body) <= 4096
        message = browser.decrypt(body)
        assert message["title"] == "Doors at 8"
        assert message["body"].startswith("éé")
        assert message["body"].endswith("…")
        scheme, _, params = headers["authorization"].partition(" ")
        assert scheme == "vapid"
        fields = dict(p.split("=", 1) for p in params.split(","))
        assert fields["k"] == VAPID_PUBLIC
        public = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), base64.urlsafe_b64decode(fields["k"] + "==")
        )
        claims = jwt.decode(fields["t"], public, algorithms=["ES256"], audience=service.url)
        assert claims["sub"] == "mailto:ops@mysetlist.example"
        assert claims["exp"] <= datetime.now(UTC).timestamp() + 24 * 3600
    delivery = await push_delivery(runtime, user.id)
    assert (delivery["status"], delivery["provider"]) == ("sent", "webpush")
    row = await runtime.db.fetch_one(
        "SELECT count(*) AS n FROM app.push_subscriptions WHERE user_id = %s "
        "AND last_success_at IS NOT NULL AND failure_count = 0", (user.id,),
    )  # fmt: skip
    assert row == {"n": 2}


async def test_gone_rate_limited_and_idle_subscriptions(
    push_api: str, push_a: PushService, token_for: Any, make_users: Any, runtime: Runtime,
    push_deliverer: Deliverer,
) -> None:  # fmt: skip
    gone_user, limited_user, idle_user = await make_users(3)
    names = {u.id: uuid.uuid4().hex for u in (gone_user, limited_user, idle_user)}
    push_a.answers[names[gone_user.id]] = (410, {})
    push_a.answers[names[limited_user.id]] = (429, {"Retry-After": "120"})
    for user in (gone_user, limited_user, idle_user):
        endpoint = f"{push_a.url}/push/{names[user.id]}"
        r = await subscribe(push_api, token_for(user.id), endpoint, Browser())
        assert r.status_code == 201, r.text
        await send_push(push_api, token_for, user.id, "t", "m")
    await runtime.db.fetch_one(
        """UPDATE app.push_subscriptions SET created_at = now() - interval '90 days'
           WHERE user_id = %s RETURNING id""",
        (idle_user.id,),
    )
    before = datetime.now(UTC)
    await push_deliverer.drain(runtime.db)

    gone = await push_delivery(runtime, gone_user.id)
    assert gone["status"] == "failed"
    assert "410" in gone["last_error"]
    limited = await push_delivery(runtime, limited_user.id)
    assert (limited["status"], limited["defer_reason"]) == ("deferred", "retry")
    assert limited["next_attempt_at"] >= before + timedelta(seconds=119)
    idle = await push_delivery(runtime, idle_user.id)
    assert (idle["status"], idle["last_error"]) == ("failed", "no live push subscription")
    assert push_a.to(names[idle_user.id]) == []  # never pushed to

    left = await runtime.db.fetch_all(
        "SELECT user_id, failure_count FROM app.push_subscriptions WHERE user_id = ANY(%s)",
        ([gone_user.id, limited_user.id, idle_user.id],),
    )
    assert [(str(r["user_id"]), r["failure_count"]) for r in left] == [(limited_user.id, 1)]


def test_payload_fits_the_record_whatever_the_data() -> None:
    row = {"notification_id": 1, "type": "t", "title": "x" * 200, "message": "m" * 5000,
           "data": {"blob": "d" * 5000}}  # fmt: skip
    encoded = payload(row)
    assert len(encoded) <= MAX_PAYLOAD_BYTES
    assert orjson.loads(encoded)["title"] == "x" * 200
