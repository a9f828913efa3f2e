"""RFC 8058 one-click unsubscribe as a mailbox provider sends it, the preferences page that
never unsubscribes by itself, and open/click tracking that changes only counters."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery.drain import Deliverer
from tests.notify.conftest import SmtpSink, body_of

pytestmark = pytest.mark.db


async def _send(api_url: str, token_for: Any, user_id: str, **extra: Any) -> None:
    body = {"userId": user_id, "type": "vote_activity", "title": "Results", "message": "m",
            "channels": ["email"], **extra}  # fmt: skip
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(
            "/api/notifications/send", json=body,
            headers={"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"},
        )  # fmt: skip
        assert r.status_code == 202, r.text


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
async def test_one_click_post_stops_that_categorys_email(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink, encoding: str,
) -> None:  # fmt: skip
    (user,) = await make_users(1)
    await _send(api_url, token_for, user.id)
    await deliverer.drain(runtime.db)
    (message,) = smtp_sink.to(user.email)
    header = message["List-Unsubscribe"]
    https_url = re.match(r"<([^>]+)>", header)
    assert https_url is not None
    path = https_url.group(1).removeprefix("http://notify.test")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # a mailbox provider's POST: no cookies, no auth, the one field
    async with httpx.AsyncClient(base_url=api_url, follow_redirects=False) as provider:
        page = await provider.get(path)  # a link scanner's prefetch
        assert page.status_code == 200
        assert "Unsubscribe from vote results" in page.text
        prefs = await runtime.db.fetch_one(
            "SELECT 1 FROM notify.user_notification_preferences WHERE user_id = %s", (user.id,)
        )
        assert prefs is None  # the GET changed nothing
        if encoding == "urlencoded":
            posts = [await provider.post(path, data={"List-Unsubscribe": "One-Click"})
                     for _ in range(2)]  # fmt: skip
        else:
            posts = [await provider.post(path, files={"List-Unsubscribe": (None, "One-Click")})
                     for _ in range(2)]  # fmt: skip
        assert [p.status_code for p in posts] == [200, 200]  # idempotent, no redirect
        assert "location" not in posts[0].headers
        forged = await provider.post(path[:-3] + "xyz", data={"List-Unsubscribe": "One-Click"})
        assert forged.status_code == 404

    (row,) = await runtime.db.fetch_all(
        "SELECT status, unsubscribed_at FROM notify.notification_delivery WHERE user_id = %s",
        (user.id,),
    )
    assert row["status"] == "unsubscribed"
    assert row["unsubscribed_at"] is not None
    await _send(api_url, token_for, user.id)  # vote results again: no email
    await _send(api_url, token_for, user.id, type="account_notice")  # transactional still goes
    await deliverer.drain(runtime.db)
    assert [m["Subject"] for m in smtp_sink.to(user.email)] == ["Results", "Results"]
    assert smtp_sink.to(user.email)[1]["List-Unsubscribe"] is None  # transactional: none


async def test_clicks_redirect_only_to_stored_destinations_and_change_only_counters(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    (user,) = await make_users(1)
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(
            "/api/notifications/send",
            json={"userId": user.id, "type": "show_reminder", "title": "t", "message": "m",
                  "channels": ["email"],
                  "variables": {"artist_name": "A", "reminder_text": "soon",
                                "show_url": "https://mysetlist.example/shows/9?x=1&y=2"}},
            headers={"Authorization": f"Bearer {token_for(uuid.uuid4(), admin=True)}"},
        )  # fmt: skip
        assert r.status_code == 202, r.text
    await deliverer.drain(runtime.db)
    (message,) = smtp_sink.to(user.email)
    html = body_of(message)
    click = re.search(r'href="http://notify.test(/api/notifications/t/c/[^"]+)"', html)
    pixel = re.search(r'src="http://notify.test(/api/notifications/t/o/[^"]+)"', html)
    assert click is not None
    assert pixel is not None
    async with httpx.AsyncClient(base_url=api_url, follow_redirects=False) as c:
        r = await c.get(click.group(1))
        assert r.status_code == 302
        assert r.headers["location"] == "https://mysetlist.example/shows/9?x=1&y=2"
        assert (await c.get(click.group(1)[:-2] + "zz")).status_code == 404
        assert (await c.get(pixel.group(1))).headers["content-type"] == "image/gif"
    row = await runtime.db.fetch_one(
        """SELECT status, open_count, click_count, opened_at, clicked_at
           FROM notify.notification_delivery WHERE user_id = %s""",
        (user.id,),
    )
    assert row is not None
    assert (row["status"], row["open_count"], row["click_count"]) == ("sent", 1, 1)
