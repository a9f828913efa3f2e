"""The in-app inbox under RLS and its live stream: a notification delivered by a worker
reaches a stream served by another API process (PostgreSQL LISTEN/NOTIFY), and a stream
resumed with Last-Event-ID gets what it missed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery.drain import Deliverer
from tests.conftest import serve_app

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def second_api(settings: Settings, database_url: str, redis_url: str) -> Iterator[str]:
    """Another API process's worth of app (its own pool and LISTEN connection)."""
    from mysetlist.api import create_app

    with serve_app(create_app(settings, database_url, redis_url, with_worker=False)) as url:
        yield url


async def notify_in_app(api: str, token_for: Any, user_id: str, title: str) -> None:
    async with httpx.AsyncClient(base_url=api) as client:
        r = await client.post(
            "/api/notifications/send",
            json={"userId": user_id, "type": "account_notice", "title": title,
                  "message": f"about {title}", "channels": ["in_app"]},
            headers={"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"},
        )  # fmt: skip
        assert r.status_code == 202, r.text


async def test_inbox_lists_counts_and_marks_read_only_the_callers_own(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, deliverer: Deliverer
) -> None:
    alice, bob = await make_users(2)
    for title in ("one", "two", "three"):
        await notify_in_app(api_url, token_for, alice.id, title)
    await notify_in_app(api_url, token_for, bob.id, "bob's")
    await deliverer.drain(runtime.db)
    as_alice = {"Authorization": f"Bearer {token_for(alice.id)}"}
    as_bob = {"Authorization": f"Bearer {token_for(bob.id)}"}
    async with httpx.AsyncClient(base_url=api_url) as c:
        listed = (await c.get("/api/notifications", headers=as_alice)).json()
        assert [n["title"] for n in listed["notifications"]] == ["three", "two", "one"]
        assert listed["unreadCount"] == 3
        first = listed["notifications"][-1]["id"]

        # Bob can neither see nor mark Alice's: the same 404 as an unknown id.
        assert (await c.post(f"/api/notifications/{first}/read", headers=as_bob)).status_code == 404
        bobs = (await c.get("/api/notifications", headers=as_bob)).json()["notifications"]
        assert [n["title"] for n in bobs] == ["bob's"]

        marked = await c.post(f"/api/notifications/{first}/read", headers=as_alice)
        again = await c.post(f"/api/notifications/{first}/read", headers=as_alice)
        assert marked.status_code == again.status_code == 200
        assert marked.json()["readAt"] == again.json()["readAt"]  # idempotent
        count = await c.get("/api/notifications/unread-count", headers=as_alice)
        assert count.json() == {"unreadCount": 2}
        unread = (await c.get("/api/notifications?unread=true", headers=as_alice)).json()
        assert [n["title"] for n in unread["notifications"]] == ["three", "two"]

        assert (await c.post("/api/notifications/read-all", headers=as_alice)).json() == {
            "marked": 2
        }
        count = await c.get("/api/notifications/unread-count", headers=as_alice)
        assert count.json() == {"unreadCount": 0}
        assert (await c.get("/api/notifications/unread-count", headers=as_bob)).json() == {
            "unreadCount": 1
        }
        bad = await c.post("/api/notifications/0/read", headers=as_alice)
        assert bad.status_code == 422
        assert (await c.get("/api/notifications")).status_code == 401


async def read_events(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    """The next `count` notification events of an open SSE response (id checked)."""
    events: list[dict[str, Any]] = []
    event_id = None
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            data = orjson.loads(line[6:])
            assert data["id"] == event_id
            events.append(data)
            if len(events) == count:
                return events
    raise AssertionError("the stream ended")


async def test_stream_across_processes_and_resume_from_last_event_id(
    api_url: str, second_api: str, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer,
) -> None:  # fmt: skip
    (user,) = await make_users(1)
    headers = {"Authorization": f"Bearer {token_for(user.id)}"}
    timeout = httpx.Timeout(30)
    async with (
        httpx.AsyncClient(base_url=second_api, timeout=timeout) as c,
        c.stream("GET", "/api/notifications/stream", headers=headers) as live,
    ):
        assert live.status_code == 200
        assert live.headers["content-type"].startswith("text/event-stream")
        # Sent through one API, delivered by this process's drain, streamed by the other.
        await notify_in_app(api_url, token_for, user.id, "live one")
        await deliverer.drain(runtime.db)
        # Within the keepalive (15 s), when the stream would look again anyway: the wake-up
        # came from the NOTIFY.
        (event,) = await asyncio.wait_for(read_events(live, 1), 10)
        assert event["title"] == "live one"

    # Missed while disconnected: a reconnect with Last-Event-ID gets both, in order.
    await notify_in_app(api_url, token_for, user.id, "missed one")
    await notify_in_app(api_url, token_for, user.id, "missed two")
    await deliverer.drain(runtime.db)
    resume = {**headers, "Last-Event-ID": str(event["id"])}
    async with (
        httpx.AsyncClient(base_url=second_api, timeout=timeout) as c,
        c.stream("GET", "/api/notifications/stream", headers=resume) as resumed,
    ):
        missed = await asyncio.wait_for(read_events(resumed, 2), 30)
        assert [e["title"] for e in missed] == ["missed one", "missed two"]

    forged_cookie = {"mysetlist_access_token": "not.a.jwt"}
    async with httpx.AsyncClient(base_url=second_api, cookies=forged_cookie) as c:
        assert (await c.get("/api/notifications/stream")).status_code == 401
    async with httpx.AsyncClient(base_url=second_api) as c:
        # The token is never taken from the URL.
        in_url = await c.get(f"/api/notifications/stream?access_token={token_for(user.id)}")
        assert in_url.status_code == 401
    # A browser's EventSource sends no header: the cookie carries the token.
    async with (
        httpx.AsyncClient(base_url=second_api, timeout=timeout,
                          cookies={"mysetlist_access_token": token_for(user.id)}) as c,
        c.stream("GET", "/api/notifications/stream",
                 headers={"Last-Event-ID": str(event["id"])}) as by_cookie,
    ):  # fmt: skip
        assert by_cookie.status_code == 200
        missed = await asyncio.wait_for(read_events(by_cookie, 2), 30)
        assert [e["title"] for e in missed] == ["missed one", "missed two"]
    async with httpx.AsyncClient(base_url=second_api) as c:
        bad = await c.get("/api/notifications/stream", headers={**headers, "Last-Event-ID": "x"})
        assert bad.status_code == 400
