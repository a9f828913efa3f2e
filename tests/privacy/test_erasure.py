"""GDPR erasure: seed a user in every table that declares personal data, in Redis and in a
model artifact; erase through the API; then scan every column of every table and every
Redis key for the user's id, email (plain and hashed), anonymous and session ids."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
import orjson
import pytest

from mysetlist.core.db import fetch_one_in
from mysetlist.core.runtime import Runtime
from mysetlist.privacy.erasure import (
    collect_identifiers,
    erase,
    request_erasure,
    resume_pending_erasures,
    scrub_redis,
)
from tests.privacy.seeding import (
    SeededUser,
    find_in_database,
    find_in_redis,
    new_user,
    redis_prefix,
    seed_store,
)

pytestmark = pytest.mark.db
KEPT = {"notify.suppressions": ["address_hash"]}  # a bounced address stays suppressed


def _prefix() -> str:
    return redis_prefix()


async def _seed(runtime: Runtime, *users: SeededUser) -> set[str]:
    return await seed_store(runtime, *users)


async def test_erase_then_scan_finds_nothing_of_the_user(
    runtime: Runtime, api_url: str, token_for: Any
) -> None:
    user, other = new_user(runtime.cipher), new_user(runtime.cipher)
    seeded = await _seed(runtime, user, other)
    # Not vacuous: the scan sees the user everywhere before, and the tables the issue names.
    async with runtime.db.transaction() as conn:
        before = await find_in_database(conn, user.needles(), kept=KEPT)
    assert {
        "app.setlist_votes", "analytics.user_events", "analytics.identity_links",
        "notify.notifications", "app.push_subscriptions", "analytics.ml_churn_predictions",
        "analytics.setlist_fan_scores", "notify.notification_delivery",
    } <= seeded  # fmt: skip
    assert {hit.split(":")[0] for hit in before} >= seeded - {"notify.suppressions"}
    assert await find_in_redis(runtime.redis, _prefix(), user.redis_needles())

    async with httpx.AsyncClient(base_url=api_url) as client:
        response = await client.delete(
            "/api/privacy/me", headers={"Authorization": f"Bearer {token_for(user.user_id)}"}
        )
    assert response.status_code == 202, response.text
    request_id = response.json()["erasure_request"]
    # The worker's job, run here (the test API has no worker).
    status = await erase(runtime.db, runtime.redis, runtime.cipher, request_id, prefix=_prefix())
    assert status is not None
    assert status["status"] == "done"
    assert status["counts"]["analytics.user_events"]["deleted"] == 2  # incl. pre-login event
    assert list(status["models"].values()) == ["user rows removed"]  # the seeded recommender

    async with runtime.db.transaction() as conn:
        after = await find_in_database(conn, user.needles(), kept=KEPT)
        other_left = await find_in_database(conn, other.needles(), kept=KEPT)
        suppressed = await fetch_one_in(
            conn, "SELECT count(*) AS n FROM notify.suppressions WHERE address_hash = %s",
            (user.email_hash,),
        )  # fmt: skip
        request = await fetch_one_in(
            conn, "SELECT * FROM privacy.erasure_requests WHERE id = %s", (request_id,)
        )
    assert after == [], after
    assert await find_in_redis(runtime.redis, _prefix(), user.redis_needles()) == []
    # Only the user went: the other fan's rows, Redis entries and model rows stay.
    assert {hit.split(":")[0] for hit in other_left} >= seeded - {"notify.suppressions"}
    assert await find_in_redis(runtime.redis, _prefix(), other.redis_needles())
    assert await runtime.redis.hget(f"{_prefix()}:live:events:99", "page_view") == b"7"
    assert suppressed is not None
    assert suppressed["n"] == 1
    assert request is not None
    assert request["user_id"] is None
    assert request["requested_by"] is None
    assert request["source"] == "self"
    assert request["counts"]


async def test_an_erasure_cut_short_finishes_when_resumed(runtime: Runtime) -> None:
    user = new_user(runtime.cipher)
    await _seed(runtime, user)
    request_id, created = await request_erasure(
        runtime.db, user.user_id, requested_by=None, requested_by_role="cli", source="cli",
        revocations=runtime.revocations,
    )  # fmt: skip
    assert created
    again, created_again = await request_erasure(
        runtime.db, user.user_id, requested_by=None, requested_by_role="cli", source="cli",
        revocations=runtime.revocations,
    )  # fmt: skip
    assert (again, created_again) == (request_id, False)  # one pending request per user
    # A run that died after its Redis step: the rows are all still there, the request pending.
    ids = await collect_identifiers(runtime.db, runtime.cipher, user.user_id)
    await scrub_redis(runtime.redis, ids, prefix=_prefix())
    async with runtime.db.transaction() as conn:
        assert await find_in_database(conn, user.needles(), kept=KEPT)
        pending = await fetch_one_in(
            conn, "SELECT status FROM privacy.erasure_requests WHERE id = %s", (request_id,)
        )
    assert pending == {"status": "pending"}
    finished = await resume_pending_erasures(
        runtime.db, runtime.redis, runtime.cipher, prefix=_prefix(), older_than="0 seconds"
    )
    assert request_id in finished
    async with runtime.db.transaction() as conn:
        assert await find_in_database(conn, user.needles(), kept=KEPT) == []
    # Idempotent: running the finished request again changes nothing.
    status = await erase(runtime.db, runtime.redis, runtime.cipher, request_id, prefix=_prefix())
    assert status is not None
    assert status["status"] == "done"


async def test_operators_erase_any_user_and_users_only_themselves(
    runtime: Runtime, api_url: str, token_for: Any
) -> None:
    user = new_user(runtime.cipher)
    await _seed(runtime, user)
    async with httpx.AsyncClient(base_url=api_url) as client:
        stranger = {"Authorization": f"Bearer {token_for(new_user(runtime.cipher).user_id)}"}
        refused = await client.delete(f"/api/privacy/users/{user.user_id}", headers=stranger)
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        operator = {
            "Authorization": f"Bearer {token_for(new_user(runtime.cipher).user_id, admin=True)}"
        }
        bad = await client.delete("/api/privacy/users/not-a-uuid", headers=operator)
        assert bad.status_code == 422
        accepted = await client.delete(f"/api/privacy/users/{user.user_id}", headers=operator)
        assert accepted.status_code == 202
        request_id = accepted.json()["erasure_request"]
        await erase(runtime.db, runtime.redis, runtime.cipher, request_id, prefix=_prefix())
        shown = await client.get(f"/api/privacy/erasures/{request_id}", headers=operator)
        unknown = await client.get(f"/api/privacy/erasures/{request_id + 1000}", headers=operator)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json() == {
        "type": "about:blank", "title": "Not Found", "status": 404,
        "detail": f"no erasure request {request_id + 1000}",
        "instance": f"/api/privacy/erasures/{request_id + 1000}",
    }  # fmt: skip
    assert shown.status_code == 200
    assert shown.json()["status"] == "done"
    assert user.user_id not in shown.text


async def test_the_cli_erases_like_the_api(
    runtime: Runtime, database_url: str, redis_url: str, tmp_path: Any
) -> None:
    from tests.conftest import TEST_ENCRYPTION_KEY

    user = new_user(runtime.cipher)
    await _seed(runtime, user)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MYSETLIST_DATA_DIR": str(tmp_path),
        "MYSETLIST_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mysetlist", "privacy", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert cli("erase", "not-a-user").returncode == 2
    done = cli("erase", user.user_id)
    assert done.returncode == 0, done.stderr
    status = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert status["status"] == "done"
    assert status["source"] == "cli"
    async with runtime.db.transaction() as conn:
        assert await find_in_database(conn, user.needles(), kept=KEPT) == []
    assert await find_in_redis(runtime.redis, _prefix(), user.redis_needles()) == []
