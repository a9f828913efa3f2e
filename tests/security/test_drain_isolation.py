"""Attack family: one poisoned delivery halts or repeats everyone's (issue 15, items 2 and 3).

A stored time zone PostgreSQL does not know failed the drain's SQL for every chunk that
held that fan; a push endpoint that raised rolled a chunk back after its emails had gone,
so another user's email reached the SMTP server 5 times while staying queued. Here one
drain chunk holds one poisoned delivery of each kind, and every other delivery must reach
the real SMTP sink or the local push server exactly once, also after further drains."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from mysetlist.core.runtime import Runtime
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


@pytest.fixture
def push_server() -> Iterator[PushService]:
    yield from start_push_service()


async def _poison_template(runtime: Runtime) -> str:
    """A template stored before render checks existed: it fails at every render."""
    name = f"poisoned_{uuid.uuid4().hex[:8]}"
    await runtime.db.fetch_one(
        """INSERT INTO notify.email_templates (name, locale, version, category, subject,
                                               html_body)
           VALUES (%s, 'en', 1, 'account', 'Hello', '<p>{{ 1/0 }}</p>') RETURNING id""",
        (name,),
    )
    return name


async def test_one_poisoned_delivery_of_each_kind_stops_nobody_else(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, smtp_sink: SmtpSink,
    push_server: PushService,
) -> None:  # fmt: skip
    good = await make_users(4, prefix="good")
    (zoned,) = await make_users(1, prefix="zoned", timezone="Mars/Olympus")
    (refused,) = await make_users(1, prefix="refused")
    (templated,) = await make_users(1, prefix="templated")
    (jammer, pushed) = await make_users(2, prefix="push")
    smtp_sink.refuse.add(refused.email)
    # A zone written around the API, as before the check existed (PostgreSQL and Python
    # know neither): formerly `AT TIME ZONE` failed the whole chunk's SQL.
    await runtime.db.fetch_one(
        """INSERT INTO notify.user_notification_preferences (user_id, timezone)
           VALUES (%s, 'Mars/Olympus') RETURNING user_id""",
        (zoned.id,),
    )
    template = await _poison_template(runtime)
    # The jammer's subscriptions: loopback by IPv6 literal (formerly VapidException out of
    # the channel), a name on a non-default port, and keys the library cannot use.
    browser = Browser()
    for endpoint in (
        f"https://[::1]:8443/push/{uuid.uuid4().hex}",
        f"https://localhost:8443/push/{uuid.uuid4().hex}",
    ):
        await store_subscription(runtime, jammer.id, endpoint, browser.keys())
    await store_subscription(runtime, jammer.id, f"{push_server.url}/push/broken",
                             {"p256dh": "AAAA", "auth": "AAAA"})  # fmt: skip
    name = uuid.uuid4().hex
    await store_subscription(runtime, pushed.id, f"{push_server.url}/push/{name}", Browser().keys())

    product = {"type": "followed_artist_update", "title": "News", "message": "New album",
               "variables": {"artist_name": "Muse", "artist_id": 7}}  # fmt: skip
    everyone_by_email = [*good, zoned, refused]
    for body in (
        {**product, "userIds": [u.id for u in everyone_by_email], "channels": ["email"]},
        {"userIds": [u.id for u in good], "type": "security_alert", "title": "New sign-in",
         "message": "A new sign-in to your account", "channels": ["email"]},
        {"userId": templated.id, "type": "account_notice", "title": "t", "message": "m",
         "template": template, "channels": ["email"]},
        {"userIds": [jammer.id, pushed.id], "type": "account_notice", "title": "Doors",
         "message": "Doors at 8", "channels": ["push"]},
    ):  # fmt: skip
        r = await send(api_url, token_for, body)
        assert r.status_code == 202, r.text

    deliverer = push_deliverer(runtime, smtp_sink.port, push_server, NOTIFY_BATCH_SIZE=200)
    try:
        for _ in range(3):  # more drains must not send anything twice
            await deliverer.drain(runtime.db)
    finally:
        await deliverer.close()

    received = Counter(m["To"] for m in smtp_sink.for_users({u.email for u in everyone_by_email}))
    assert {u.email: received[u.email] for u in good} == {u.email: 2 for u in good}
    assert received[zoned.email] == 1  # its product email went (its day counted in UTC)
    assert received[refused.email] == 0
    assert smtp_sink.to(templated.email) == []
    assert len(push_server.to(name)) == 1
    assert push_server.to("broken") == []

    rows = await delivery_rows(
        runtime, [u.id for u in (*everyone_by_email, templated, jammer, pushed)]
    )
    status = {(str(r["user_id"]), r["type"]): r for r in rows}
    for user in good:
        assert status[(user.id, "followed_artist_update")]["status"] == "sent"
        assert status[(user.id, "security_alert")]["status"] == "sent"
    assert status[(zoned.id, "followed_artist_update")]["status"] == "sent"
    assert status[(refused.id, "followed_artist_update")]["status"] == "bounced"
    failed = status[(templated.id, "account_notice")]
    assert (failed["status"], failed["attempts"]) == ("failed", 0)
    assert "ZeroDivisionError" in failed["last_error"]
    jammed = status[(jammer.id, "account_notice")]
    assert jammed["status"] == "failed"
    assert "endpoint refused" in jammed["last_error"]
    assert status[(pushed.id, "account_notice")]["status"] == "sent"
