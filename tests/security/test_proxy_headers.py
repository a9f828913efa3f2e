"""Attack: pick your own client address with `X-Forwarded-For` (issue 15, item 10). It was
believed from 127.0.0.1 by default, so behind no proxy every request could name a fresh
address and reset its per-IP limits. Now only configured proxies are believed (none by
default), and failed JWT checks count toward the per-IP auth-failure limit, in the same
window as failed write-key checks."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.db import fetch_one_in
from mysetlist.core.runtime import Runtime
from tests.conditions import until
from tests.conftest import serve_app

pytestmark = pytest.mark.db
FORGED = {"Authorization": "Bearer forged.token.here"}


@contextmanager
def own_api(settings: Settings, database_url: str, redis_url: str, **updates: Any) -> Iterator[str]:
    """An API of its own (own Redis key prefix, so no other test's failures count)."""
    from mysetlist.api import create_app

    ours = settings.model_copy(update={"redis_key_prefix": f"px-{uuid.uuid4().hex[:8]}", **updates})
    with serve_app(create_app(ours, database_url, redis_url, with_worker=False)) as url:
        yield url


async def audited_ip(runtime: Runtime, request_id: str) -> str | None:
    """The address the audit trail recorded for the refused request (written after it)."""
    async with runtime.db.transaction() as conn:
        row = await fetch_one_in(
            conn,
            "SELECT host(ip) AS ip FROM analytics.audit_log"
            " WHERE action = 'security.auth_failed' AND request_id = %s",
            (request_id,),
        )
    return row["ip"] if row else None


async def test_forwarded_for_is_ignored_without_configured_proxies(
    api_url: str, runtime: Runtime
) -> None:
    rid = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=api_url) as client:
        r = await client.get(
            "/api/me/follows",
            headers={**FORGED, "X-Forwarded-For": "203.0.113.7", "X-Request-ID": rid},
        )
    assert r.status_code == 401
    ip = await until(lambda: audited_ip(runtime, rid), "the audit entry of the refusal")
    assert ip == "127.0.0.1"  # the peer, not the address the client claimed


async def test_forwarded_for_is_believed_from_a_configured_proxy(
    settings: Settings, database_url: str, redis_url: str, runtime: Runtime
) -> None:
    rid = uuid.uuid4().hex
    with own_api(settings, database_url, redis_url, trusted_proxies=["127.0.0.1"]) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            r = await client.get(
                "/api/me/follows",
                headers={**FORGED, "X-Forwarded-For": "203.0.113.7", "X-Request-ID": rid},
            )
        assert r.status_code == 401
        ip = await until(lambda: audited_ip(runtime, rid), "the audit entry of the refusal")
    assert ip == "203.0.113.7"


async def test_failed_jwts_count_toward_the_per_client_limit(
    settings: Settings,
    database_url: str,
    redis_url: str,
    token_for: Any,
) -> None:
    # Tracking's write-key failures count in the same window (core's limit, same key).
    fan = {"Authorization": "Bearer " + token_for(uuid.uuid4())}
    bad_key = {"Authorization": "Basic " + base64.b64encode(b"no-such-key:").decode()}
    with own_api(
        settings,
        database_url,
        redis_url,
        auth_failure_rate_limit="3/minute",
        trusted_proxies=["127.0.0.1"],
    ) as url:
        attacker = {"X-Forwarded-For": "198.51.100.1"}
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(3):
                r = await client.get("/api/me/follows", headers={**FORGED, **attacker})
                assert r.status_code == 401
            r = await client.get("/api/me/follows", headers={**FORGED, **attacker})
            assert r.status_code == 429, r.text
            assert 1 <= int(r.headers["retry-after"]) <= 60
            # Refused before its token is looked at, even a good one ...
            r = await client.get("/api/me/follows", headers={**fan, **attacker})
            assert r.status_code == 429
            # ... and its write-key calls too: one budget of failures per client.
            r = await client.post(
                "/v1/track",
                json={"event": "x", "anonymousId": "a"},
                headers={**bad_key, **attacker},
            )
            assert r.status_code == 429
            # Another client (as the trusted proxy names it) is not affected.
            other = {"X-Forwarded-For": "198.51.100.2"}
            assert (
                await client.get("/api/me/follows", headers={**fan, **other})
            ).status_code == 200
            assert (
                await client.get("/api/me/follows", headers={**FORGED, **other})
            ).status_code == 401


async def test_a_forged_forwarded_for_does_not_reset_the_limit(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    with own_api(settings, database_url, redis_url, auth_failure_rate_limit="2/minute") as url:
        async with httpx.AsyncClient(base_url=url) as client:
            statuses = [
                (
                    await client.get(
                        "/api/me/follows", headers={**FORGED, "X-Forwarded-For": f"203.0.113.{i}"}
                    )
                ).status_code
                for i in range(4)
            ]
    assert statuses == [401, 401, 429, 429]


async def test_tokens_pasted_into_the_dashboard_login_count_too(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    with own_api(settings, database_url, redis_url, auth_failure_rate_limit="2/minute") as url:
        async with httpx.AsyncClient(base_url=url) as client:
            form = await client.get("/dashboard")
            csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            statuses = [
                (
                    await client.post("/dashboard/login", data={"token": "x.y.z", "csrf": csrf})
                ).status_code
                for _ in range(3)
            ]
            # ... and the bearer path shares the client's budget.
            bearer = await client.get("/api/me/follows", headers=FORGED)
    assert statuses == [401, 401, 429]
    assert bearer.status_code == 429
