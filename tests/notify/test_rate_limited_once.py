"""Under a rate limit that makes senders wait, with several drains at once and transient
refusals in the middle of chunks, every message reaches the sink exactly once (counted per
delivery key, the X-MySetlist-Delivery header) and no 60 s span sees more than the limit.

An earlier rate-limited bench run sent 200 messages twice; this is the test that would
have caught it. It waits for the limiter's window (about a minute) on purpose."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery.drain import Deliverer
from tests.conditions import until
from tests.notify.conftest import SmtpSink, notify_settings

pytestmark = [pytest.mark.db, pytest.mark.slow]

LIMIT = 12
MESSAGES = 18  # 6 more than the limit: they wait for the window to move
DRAINS = 3


async def test_rate_limited_concurrent_drains_send_each_message_once(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    users = await make_users(MESSAGES)
    for user in users[1::5]:  # refused once at RCPT, mid-chunk: retried, others not resent
        smtp_sink.busy[user.email] = 1
    settings = notify_settings(
        smtp_sink.port, NOTIFY_RATE_LIMIT_PER_MINUTE=LIMIT, NOTIFY_BATCH_SIZE=4,
        NOTIFY_MAX_RETRIES=10, NOTIFY_BREAKER_FAILURES=100,
    )  # fmt: skip
    deliverer = Deliverer.build(
        settings, runtime.cipher, runtime.settings.effective_encryption_key, runtime.redis_url,
        key_prefix=f"test-{uuid.uuid4().hex[:8]}",  # a rate window of this test's own
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(
            "/api/notifications/send",
            json={"userIds": [u.id for u in users], "type": "account_notice", "title": "t",
                  "message": "m", "channels": ["email"]},
            headers={"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"},
        )  # fmt: skip
        assert r.status_code == 202, r.text
    ids = [u.id for u in users]

    async def all_sent() -> bool:
        await asyncio.gather(
            *(deliverer.drain(runtime.db, budget_seconds=5) for _ in range(DRAINS))
        )
        row = await runtime.db.fetch_one(
            """SELECT count(*) FILTER (WHERE status = 'sent') AS sent
               FROM notify.notification_delivery WHERE user_id = ANY(%s::uuid[])""",
            (ids,),
        )
        return row is not None and row["sent"] == MESSAGES

    try:
        await until(all_sent, "every message sent", within=180)
    finally:
        await deliverer.close()

    received = smtp_sink.for_users({u.email for u in users})
    per_delivery = Counter(m["X-MySetlist-Delivery"] for m in received)
    assert len(per_delivery) == MESSAGES
    assert {n for n in per_delivery.values()} == {1}, per_delivery.most_common(3)
    arrivals = sorted(smtp_sink.arrived_at)
    busiest = max(sum(1 for t in arrivals if start <= t < start + 60) for start in arrivals)
    assert busiest <= LIMIT
    assert arrivals[-1] - arrivals[0] >= 60 - 1  # the limiter did make senders wait
