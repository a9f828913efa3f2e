"""Attack family: push subscriptions as server-side request forgery (issue 15, item 3).

The subscribe route took `https://127.0.0.1:…`, `https://169.254.169.254/…` and
`https://[::1]:…`; a 307 from an endpoint was followed to plain-http internal hosts; one
user registered 200 subscriptions; a `[::1]` endpoint raised out of the push channel and
another user's email in that chunk reached the SMTP server 5 times. Each is repeated here
against the defaults, at subscribe time and at send time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from mysetlist.notify.config import load_notify_settings
from tests.conftest import serve_app
from tests.notify import conftest as notify_fixtures
from tests.notify.conftest import SmtpSink
from tests.notify.test_web_push import Browser, PushService, start_push_service
from tests.security.notify_support import (
    delivery_rows,
    push_deliverer,
    send,
    store_subscription,
)

pytestmark = pytest.mark.db
smtp_sink = notify_fixtures.smtp_sink
make_users = notify_fixtures.make_users

# Refused by the default allow-list alone (none is a browser push service), and by the
# address rule where the host is an address.
REFUSED_BY_DEFAULT = [
    "https://127.0.0.1:8443/push/x",
    "https://169.254.169.254/latest/meta-data/",
    f"https://[::1]:8443/push/{uuid.uuid4().hex}",
    "https://[::ffff:127.0.0.1]/push/x",
    "http://fcm.googleapis.com/fcm/send/x",  # plain http
    "https://fcm.googleapis.com:8443/fcm/send/x",  # not the default port
    "https://user:secret@fcm.googleapis.com/fcm/send/x",
    "https://internal.example/push/x",  # not a push service
    "https://fcm.googleapis.com/fcm/send/x y",
]
# Refused by the address rule with the allow-list opened to any host ("*"): the literals
# of every non-public range, and names that resolve to loopback.
REFUSED_ADDRESSES = [
    "https://127.0.0.1/x", "https://10.0.0.1/x", "https://172.16.0.1/x",
    "https://192.168.1.1/x", "https://169.254.169.254/x", "https://100.64.0.1/x",
    "https://0.0.0.0/x", "https://224.0.0.1/x", "https://240.0.0.1/x",
    "https://255.255.255.255/x", "https://[::1]/x", "https://[::]/x",
    "https://[::ffff:127.0.0.1]/x", "https://[::ffff:10.0.0.1]/x", "https://[fe80::1]/x",
    "https://[fc00::1]/x", "https://[fd12:3456::1]/x", "https://[ff02::1]/x",
    "https://[2002:7f00:1::]/x",  # 6to4 around 127.0.0.1
    "https://localhost/x", "https://127.1/x", "https://2130706433/x",  # names -> 127.0.0.1
]  # fmt: skip


@pytest.fixture(scope="module")
def push_a() -> Iterator[PushService]:
    yield from start_push_service()


@pytest.fixture(scope="module")
def push_b() -> Iterator[PushService]:
    yield from start_push_service()


def _api(settings: Settings, database_url: str, redis_url: str, **notify: Any) -> Iterator[str]:
    from mysetlist.api import create_app

    app = create_app(settings.with_variables(**notify), database_url, redis_url, with_worker=False)
    with serve_app(app) as url:
        yield url


@pytest.fixture(scope="module")
def any_host_api(settings: Settings, database_url: str, redis_url: str) -> Iterator[str]:
    """The allow-list opened to every host: only the address rule stands."""
    yield from _api(settings, database_url, redis_url, NOTIFY_PUSH_ALLOWED_HOSTS="*")


@pytest.fixture(scope="module")
def test_origin_api(
    settings: Settings, database_url: str, redis_url: str, push_a: PushService
) -> Iterator[str]:
    """Local push server A named as the one test origin."""
    yield from _api(settings, database_url, redis_url, NOTIFY_PUSH_TEST_ORIGINS=push_a.url)


async def _subscribe(api: str, token: str, endpoint: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=api) as c:
        return await c.post(
            "/api/notifications/push-subscriptions",
            json={"endpoint": endpoint, "keys": Browser().keys()},
            headers={"Authorization": f"Bearer {token}"},
        )


async def _subscriptions(runtime: Runtime, user_id: str) -> list[dict[str, Any]]:
    return await runtime.db.fetch_all(
        "SELECT id, endpoint_hash FROM app.push_subscriptions WHERE user_id = %s ORDER BY id",
        (user_id,),
    )


async def test_the_defaults_refuse_every_endpoint_but_a_browser_push_service(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime
) -> None:
    (fan,) = await make_users(1)
    for endpoint in REFUSED_BY_DEFAULT:
        r = await _subscribe(api_url, token_for(fan.id), endpoint)
        assert r.status_code == 422, (endpoint, r.text)
        assert r.json()["errors"][0]["field"] == "endpoint"
    assert await _subscriptions(runtime, fan.id) == []


async def test_every_non_public_address_is_refused_even_with_any_host_allowed(
    any_host_api: str, token_for: Any, make_users: Any, runtime: Runtime
) -> None:
    (fan,) = await make_users(1)
    for endpoint in REFUSED_ADDRESSES:
        r = await _subscribe(any_host_api, token_for(fan.id), endpoint)
        assert r.status_code == 422, (endpoint, r.text)
        assert "public address" in r.text or "non-public" in r.text, (endpoint, r.text)
    assert await _subscriptions(runtime, fan.id) == []


async def test_the_send_checks_again_and_connects_only_to_checked_addresses(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, smtp_sink: SmtpSink,
    push_a: PushService, push_b: PushService,
) -> None:  # fmt: skip
    """Rows stored without the subscribe check (from before it, or a name that resolved
    to a public address then and to loopback now: DNS rebinding)."""
    (fan,) = await make_users(1)
    b_port = push_b.url.rsplit(":", 1)[1]
    for endpoint in (f"https://127.0.0.1:{b_port}/push", "https://127.0.0.1/push",
                     "https://localhost/push"):  # fmt: skip
        await store_subscription(runtime, fan.id, f"{endpoint}/{uuid.uuid4().hex}",
                                 Browser().keys())  # fmt: skip
    r = await send(
        api_url,
        token_for,
        {
            "userId": fan.id,
            "type": "account_notice",
            "title": "t",
            "message": "m",
            "channels": ["push"],
        },
    )
    assert r.status_code == 202, r.text
    # Any host allowed: the name passes the URL check and only the resolver can stop it.
    deliverer = push_deliverer(runtime, smtp_sink.port, push_a, NOTIFY_PUSH_ALLOWED_HOSTS="*")
    try:
        await deliverer.drain(runtime.db)
    finally:
        await deliverer.close()
    (row,) = await delivery_rows(runtime, [fan.id])
    assert row["status"] == "failed"  # not retried: a refusal is no outage
    assert "must use the default https port" in row["last_error"]
    assert "127.0.0.1 is not a public address" in row["last_error"]
    assert "localhost resolves to a non-public address" in row["last_error"]
    assert push_b.received == []


async def test_a_redirect_is_not_followed(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, smtp_sink: SmtpSink,
    push_a: PushService, push_b: PushService,
) -> None:  # fmt: skip
    (fan,) = await make_users(1)
    name = uuid.uuid4().hex
    internal = f"{push_b.url}/push/{name}"  # plain http, loopback: an "internal host"
    push_a.answers[name] = (307, {"Location": internal})
    await store_subscription(runtime, fan.id, f"{push_a.url}/push/{name}", Browser().keys())
    r = await send(
        api_url,
        token_for,
        {
            "userId": fan.id,
            "type": "account_notice",
            "title": "t",
            "message": "m",
            "channels": ["push"],
        },
    )
    assert r.status_code == 202, r.text
    # Both servers are test origins: only not following the redirect keeps B unreached.
    deliverer = push_deliverer(runtime, smtp_sink.port, push_a, push_b)
    try:
        await deliverer.drain(runtime.db)
    finally:
        await deliverer.close()
    assert len(push_a.to(name)) == 1
    assert push_b.to(name) == []
    (row,) = await delivery_rows(runtime, [fan.id])
    assert row["status"] == "failed"
    assert "307" in row["last_error"]


async def test_a_user_keeps_at_most_ten_subscriptions_the_oldest_go(
    test_origin_api: str, push_a: PushService, token_for: Any, make_users: Any,
    runtime: Runtime,
) -> None:  # fmt: skip
    (fan,) = await make_users(1)
    endpoints = [f"{push_a.url}/push/{uuid.uuid4().hex}" for _ in range(12)]
    for endpoint in endpoints:
        r = await _subscribe(test_origin_api, token_for(fan.id), endpoint)
        assert r.status_code == 201, r.text
    kept = {bytes(r["endpoint_hash"]) for r in await _subscriptions(runtime, fan.id)}
    assert kept == {runtime.cipher.lookup_hash(e) for e in endpoints[2:]}


async def test_the_jam_attack_sends_another_users_email_exactly_once(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, smtp_sink: SmtpSink,
    push_a: PushService,
) -> None:  # fmt: skip
    jammer, victim = await make_users(2)
    loopback = f"https://[::1]:8443/push/{uuid.uuid4().hex}"
    await store_subscription(runtime, jammer.id, loopback, Browser().keys())
    await store_subscription(runtime, jammer.id, f"{push_a.url}/push/unusable",
                             {"p256dh": "AAAA", "auth": "AAAA"})  # the library raises  # fmt: skip
    for body in (
        {"userId": jammer.id, "type": "account_notice", "title": "t", "message": "m",
         "channels": ["push"]},
        {"userId": victim.id, "type": "security_alert", "title": "New sign-in",
         "message": "A new sign-in to your account", "channels": ["email"]},
    ):  # fmt: skip
        assert (await send(api_url, token_for, body)).status_code == 202
    deliverer = push_deliverer(runtime, smtp_sink.port, push_a)
    try:
        for _ in range(3):
            await deliverer.drain(runtime.db)
    finally:
        await deliverer.close()
    assert len(smtp_sink.to(victim.email)) == 1
    rows = {str(r["user_id"]): r for r in await delivery_rows(runtime, [jammer.id, victim.id])}
    assert rows[victim.id]["status"] == "sent"
    assert rows[jammer.id]["status"] == "failed"
    assert push_a.to("unusable") == []


def test_the_test_only_exemption_names_loopback_origins_only() -> None:
    assert load_notify_settings(NOTIFY_PUSH_TEST_ORIGINS="http://127.0.0.1:8123").push_test_origins
    for origin in ("http://10.0.0.1:80", "https://169.254.169.254:443", "http://internal:80"):
        with pytest.raises(Exception, match="loopback"):
            load_notify_settings(NOTIFY_PUSH_TEST_ORIGINS=origin)
    assert load_notify_settings().push_test_origins == []  # the default exempts nothing
