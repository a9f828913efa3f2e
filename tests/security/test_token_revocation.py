"""Attack: a token outlives what should have ended it (issue 15, item 4).

After erasure the erased user's token kept getting 200 on the user's routes and 202 on
ingest (storing new events under the erased id). Erasure and operators now revoke every
token of a user issued before that moment; the check is in memory on every request."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.db import fetch_one_in
from mysetlist.core.runtime import Runtime
from mysetlist.core.token_revocation import TokenRevocations
from mysetlist.privacy.erasure import erase
from tests.conditions import until
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET

pytestmark = pytest.mark.db


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_issued_at(settings: Settings, user_id: str, iat: int | None) -> str:
    """A token as the platform would mint it, with a chosen `iat` (None: no `iat`)."""
    payload: dict[str, Any] = {
        "sub": user_id,
        "role": "authenticated",
        "aud": settings.jwt_audience,
        "exp": int(time.time()) + 600,
    }
    if iat is not None:
        payload["iat"] = iat
    return jwt.encode(payload, settings.effective_jwt_secret, algorithm="HS256")


async def refused(client: httpx.AsyncClient, token: str, path: str = "/api/me/follows") -> bool:
    return (await client.get(path, headers=bearer(token))).status_code == 401


async def count_events_of(runtime: Runtime, user_id: str) -> int:
    async with runtime.db.transaction() as conn:
        row = await fetch_one_in(
            conn, "SELECT count(*) AS n FROM analytics.user_events WHERE user_id = %s", (user_id,)
        )
    assert row is not None
    return int(row["n"])


async def test_an_erased_users_token_is_refused_everywhere_and_stores_nothing(
    api_url: str, runtime: Runtime, settings: Settings, token_for: Any
) -> None:
    user = str(uuid.uuid4())
    async with runtime.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO app.users (id, display_name) VALUES (%s, 'soon erased')", (user,)
        )
    token = token_for(user)
    issued = time.time()  # not before the token's own iat, and before its revocation
    event = {"event_type": "page_view", "page_url": "/after-erasure"}
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        # Not vacuous: the token works until the erasure.
        assert (await client.get("/api/me/follows", headers=bearer(token))).status_code == 200
        r = await client.post("/api/analytics/events", json=event, headers=bearer(token))
        assert r.status_code == 202, r.text
        stored = await count_events_of(runtime, user)
        assert stored == 1

        r_erase = await client.delete("/api/privacy/me", headers=bearer(token))
        assert r_erase.status_code == 202, r_erase.text
        await until(lambda: refused(client, token), "the erased user's token to be refused")

        for method, path in (
            ("GET", "/api/me/follows"),
            ("GET", "/api/me"),
            ("GET", "/api/analytics/events"),
            ("GET", "/api/privacy/export"),
            ("GET", "/api/notifications"),
            ("DELETE", "/api/privacy/me"),
        ):
            r = await client.request(method, path, headers=bearer(token))
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert "revoked" in r.json()["detail"]
        r = await client.post("/api/analytics/events", json=event, headers=bearer(token))
        assert r.status_code == 401, r.text
        assert await count_events_of(runtime, user) == stored  # nothing new under the id

        # The erasure itself (the worker's job, run here) keeps the revocation: the token
        # stays refused, and nothing in the database names the user any more.
        status = await erase(
            runtime.db,
            runtime.redis,
            runtime.cipher,
            r_erase.json()["erasure_request"],
            prefix=settings.redis_key_prefix,
        )
        assert status is not None
        assert status["status"] == "done"
        assert await count_events_of(runtime, user) == 0
        fresh = TokenRevocations(runtime.cipher.lookup_hash)  # as a process starting now
        await fresh.refresh(runtime.db)
        assert fresh.is_revoked(user, issued)
        assert await refused(client, token)


async def test_operators_revoke_a_users_tokens_and_new_ones_work(
    api_url: str, runtime: Runtime, settings: Settings, token_for: Any
) -> None:
    fan, other = str(uuid.uuid4()), str(uuid.uuid4())
    old, others = token_for(fan), token_for(other)
    operator = token_for(uuid.uuid4(), admin=True)
    url = f"/api/auth/users/{fan}/revoke-tokens"
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        assert (await client.post(url, headers=bearer(old))).status_code == 403  # fans cannot
        assert (await client.post(url)).status_code == 401
        r = await client.post(url, headers=bearer(operator))
        assert r.status_code == 200, r.text
        valid_after = int(datetime.fromisoformat(r.json()["valid_after"]).timestamp())
        assert valid_after >= time.time() - 1
        # In the process that revoked: at once, no waiting.
        assert await refused(client, old)
        # A token issued from the cut-off on works (the user signed in again) ...
        fresh = token_issued_at(settings, fan, valid_after)
        assert (await client.get("/api/me/follows", headers=bearer(fresh))).status_code == 200
        # ... one issued a second before does not, nor one that does not say when it was.
        for stale in (
            token_issued_at(settings, fan, valid_after - 1),
            token_issued_at(settings, fan, None),
        ):
            assert await refused(client, stale)
        # Other users are untouched.
        assert (await client.get("/api/me/follows", headers=bearer(others))).status_code == 200
        r = await client.post("/api/auth/users/not-a-uuid/revoke-tokens", headers=bearer(operator))
        assert r.status_code == 422
    async with runtime.db.transaction() as conn:
        audit = await fetch_one_in(
            conn,
            "SELECT actor_role FROM analytics.audit_log"
            " WHERE action = 'auth.tokens_revoked' AND target_id = %s",
            (fan,),
        )
        kept = await fetch_one_in(
            conn,
            "SELECT count(*) AS n FROM analytics.token_revocations WHERE user_key = %s",
            (runtime.revocations.user_key(fan),),
        )
    assert audit is not None
    assert audit["actor_role"] == "operator"
    assert kept is not None
    assert kept["n"] == 1  # the table names the user by a keyed hash (no column holds the id)


async def test_the_cli_revokes_and_running_api_processes_learn_it(
    api_url: str, database_url: str, redis_url: str, token_for: Any, tmp_path: Path
) -> None:
    fan = str(uuid.uuid4())
    token = token_for(fan)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MYSETLIST_DATA_DIR": str(tmp_path),
        "JWT_SECRET": TEST_JWT_SECRET,
        "MYSETLIST_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mysetlist", "auth", "revoke", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        assert (await client.get("/api/me/follows", headers=bearer(token))).status_code == 200
        assert (await asyncio.to_thread(cli, "not-a-uuid")).returncode == 2
        done = await asyncio.to_thread(cli, fan)
        assert done.returncode == 0, done.stderr
        datetime.fromisoformat(done.stdout.strip().splitlines()[-1])
        # Another process revoked: the API learns it on its next refresh (1 s by default).
        await until(
            lambda: refused(client, token), "the API to refuse the revoked token", within=10
        )
