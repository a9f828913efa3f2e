"""Thousands of open inbox streams must not cost the database anything while idle: one
shared LISTEN wakes only the streams of the user a notification is for, keepalives run no
query, a woken stream's read shares a quarter of the pool (writes keep their share), and a
revocation of the user's tokens ends their stream with `event: revoked`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery.drain import Deliverer
from mysetlist.notify.inbox import routes as inbox_routes
from mysetlist.notify.inbox.service import InboxHub
from tests.conditions import until
from tests.conftest import serve_app
from tests.notify.test_inbox import notify_in_app

pytestmark = pytest.mark.db

STREAMS = 200
POOL = 8  # the streams' reads get 2 connections of it


@pytest.fixture(scope="module")
def small_pool_app(settings: Settings, database_url: str, redis_url: str) -> FastAPI:
    """An API process with a small pool; revocations are only the ones made through it (no
    background refresh queries in the counts)."""
    from mysetlist.api import create_app

    tuned = settings.model_copy(
        update={"db_pool_max": POOL, "token_revocation_refresh_seconds": 3600}
    )
    return create_app(tuned, database_url, redis_url, with_worker=False)


@pytest.fixture(scope="module")
def small_pool_api(small_pool_app: FastAPI) -> Iterator[str]:
    with serve_app(small_pool_app) as url:
        yield url


@pytest.fixture
def fast_keepalive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keepalives every 0.1 s, so an idle window of a second holds ~10 per stream."""
    monkeypatch.setattr(inbox_routes, "KEEPALIVE_SECONDS", 0.1)


@dataclass
class OpenStream:
    user_id: str
    token: str
    lines: list[str] = field(default_factory=list)
    ended: bool = False

    def events(self, kind: str) -> int:
        return self.lines.count(f"event: {kind}")


async def _hold(client: httpx.AsyncClient, stream: OpenStream) -> None:
    headers = {"Authorization": f"Bearer {stream.token}"}
    async with client.stream("GET", "/api/notifications/stream", headers=headers) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            stream.lines.append(line)
    stream.ended = True


@pytest.fixture
async def client(small_pool_api: str) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=STREAMS + 50, max_keepalive_connections=STREAMS + 50)
    async with httpx.AsyncClient(
        base_url=small_pool_api, timeout=httpx.Timeout(60), limits=limits
    ) as c:
        yield c


def _pool_requests(app: FastAPI) -> int:
    requests: int = app.state.runtime.db.pool.get_stats().get("requests_num", 0)
    return requests


async def _open_streams(
    client: httpx.AsyncClient, app: FastAPI, users: list[Any], token_for: Any
) -> tuple[list[OpenStream], list[asyncio.Task[None]]]:
    streams = [OpenStream(u.id, token_for(u.id)) for u in users]
    tasks = [asyncio.create_task(_hold(client, s)) for s in streams[:1]]
    # The first stream starts the shared listener; the rest open once it listens (its
    # first LISTEN wakes every stream, which would blur the counts below).
    await until(lambda: _listening(app), "the shared LISTEN connection")
    tasks += [asyncio.create_task(_hold(client, s)) for s in streams[1:]]
    await until(
        _async(lambda: all(": connected" in s.lines for s in streams)),
        f"{len(streams)} streams connected",
        within=60,
    )
    return streams, tasks


async def _listening(app: FastAPI) -> bool:
    hub: InboxHub | None = getattr(app.state, "notify_inbox_hub", None)
    return hub is not None and hub.listening.is_set()


def _async(condition: Any) -> Any:
    async def check() -> Any:
        return condition()

    return check


async def _close(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_idle_streams_run_no_query_and_a_notification_wakes_only_its_fan(
    small_pool_app: FastAPI, client: httpx.AsyncClient, fast_keepalive: None,
    token_for: Any, make_users: Any, runtime: Runtime, deliverer: Deliverer, api_url: str,
) -> None:  # fmt: skip
    users = await make_users(STREAMS)
    streams, tasks = await _open_streams(client, small_pool_app, users, token_for)
    try:
        hub: InboxHub = small_pool_app.state.notify_inbox_hub
        assert hub.open_streams == STREAMS
        before = _pool_requests(small_pool_app)
        keepalives = [s.lines.count(": keepalive") for s in streams]
        # Idle until every stream has sent 5 more keepalives (~0.5 s).
        await until(
            _async(lambda: all(
                s.lines.count(": keepalive") >= seen + 5
                for s, seen in zip(streams, keepalives, strict=True)
            )),
            "5 more keepalives on every stream",
        )  # fmt: skip
        # Polling once per keepalive would be >= 1,000 pool requests here.
        assert _pool_requests(small_pool_app) - before <= 3

        fan = streams[17]
        before = _pool_requests(small_pool_app)
        await notify_in_app(api_url, token_for, fan.user_id, "for one fan")
        await deliverer.drain(runtime.db)
        await until(_async(lambda: fan.events("notification") == 1), "the fan's event")
        assert [s.user_id for s in streams if s.events("notification")] == [fan.user_id]
        # One read: the woken stream's (the send went through another API process).
        assert _pool_requests(small_pool_app) - before <= 3
    finally:
        await _close(tasks)


async def test_writes_succeed_while_every_stream_is_woken_at_once(
    small_pool_app: FastAPI, client: httpx.AsyncClient, token_for: Any, make_users: Any,
    runtime: Runtime,
) -> None:  # fmt: skip
    users = await make_users(STREAMS)
    streams, tasks = await _open_streams(client, small_pool_app, users, token_for)
    try:
        # Every stream woken at once (as when the listener reconnects): 200 reads queue
        # on the streams' share of the pool while fans write through the rest.
        async with runtime.db.transaction() as conn:
            await conn.execute(
                "SELECT pg_notify('notify_inbox', u) FROM unnest(%s::text[]) AS u",
                ([s.user_id for s in streams],),
            )
        service = {"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"}

        def send(i: int, user_id: str) -> Any:
            body = {"userId": user_id, "type": "account_notice", "title": f"w{i}",
                    "message": "m", "channels": ["in_app"]}  # fmt: skip
            return client.post("/api/notifications/send", headers=service, json=body)

        writes = await asyncio.wait_for(
            asyncio.gather(*[send(i, u.id) for i, u in enumerate(users[:40])]), timeout=30
        )
        assert [w.status_code for w in writes] == [202] * 40, [w.text for w in writes][:3]
        assert not any(s.ended for s in streams)
    finally:
        await _close(tasks)


async def test_revoking_a_fans_tokens_ends_their_open_stream(
    small_pool_app: FastAPI, client: httpx.AsyncClient, token_for: Any, make_users: Any
) -> None:
    users = await make_users(3)
    streams, tasks = await _open_streams(client, small_pool_app, users, token_for)
    try:
        revoked = streams[1]
        operator = {"Authorization": f"Bearer {token_for(uuid.uuid4(), admin=True)}"}
        response = await client.post(
            f"/api/auth/users/{revoked.user_id}/revoke-tokens", headers=operator
        )
        assert response.status_code == 200, response.text
        await until(_async(lambda: revoked.ended), "the revoked fan's stream to end")
        assert revoked.events("revoked") == 1
        assert not streams[0].ended
        assert not streams[2].ended
        # Reconnecting with the revoked token is refused.
        again = await client.get(
            "/api/notifications/stream", headers={"Authorization": f"Bearer {revoked.token}"}
        )
        assert again.status_code == 401
    finally:
        await _close(tasks)
