"""The send rate limiter's Redis down for longer than the retry schedule: every queued
message waits, none fails. A message the limiter could not let out never left, so the
retries it is deferred with are no attempts (the topology's chaos run, Redis Cluster down
42 s, failed 11 emails after maxRetries before this)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery.drain import Deliverer
from tests.conftest import free_port
from tests.notify.conftest import SmtpSink, notify_settings

pytestmark = pytest.mark.db


async def _email_rows(runtime: Runtime, user_id: str) -> list[dict[str, Any]]:
    return await runtime.db.fetch_all(
        """SELECT status, attempts, last_error FROM notify.notification_delivery
           WHERE user_id = %s AND channel = 'email'""",
        (user_id,),
    )


async def test_a_rate_limiter_outage_defers_without_using_up_retries(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    (user,) = await make_users(1)
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(
            "/api/notifications/send",
            json={"userIds": [user.id], "type": "account_notice", "title": "t",
                  "message": "m", "channels": ["email"]},
            headers={"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"},
        )  # fmt: skip
        assert r.status_code == 202, r.text
    settings = notify_settings(
        smtp_sink.port, NOTIFY_RATE_LIMIT_PER_MINUTE=600, NOTIFY_MAX_RETRIES=1
    )
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    key = runtime.settings.effective_encryption_key
    # Nothing listens there: every ask of the limiter fails, as with Redis down.
    down = Deliverer.build(
        settings, runtime.cipher, key, f"redis://127.0.0.1:{free_port()}/0", key_prefix=prefix
    )
    try:
        for _ in range(4):  # maxRetries is 1: the old code failed it at the second drain
            await down.drain(runtime.db, budget_seconds=0.5)
    finally:
        await down.close()
    (row,) = await _email_rows(runtime, user.id)
    assert row["status"] == "deferred"
    assert row["attempts"] == 0
    assert "send rate limiter unavailable" in row["last_error"]
    assert smtp_sink.to(user.email) == []

    up = Deliverer.build(settings, runtime.cipher, key, runtime.redis_url, key_prefix=prefix)
    try:
        await up.drain(runtime.db)
    finally:
        await up.close()
    (row,) = await _email_rows(runtime, user.id)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert len(smtp_sink.to(user.email)) == 1
