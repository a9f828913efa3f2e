"""Which suppressed addresses still get mail: a bounced (or manually suppressed) address
gets none, transactional included; a complaint or an unsubscribe stops product email only,
security and account mail still go (notify/delivery/suppression.py says why). Checked both when the
send chooses channels and when the drain checks again before sending."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery.drain import Deliverer
from tests.notify.conftest import SmtpSink

pytestmark = pytest.mark.db


async def suppress(runtime: Runtime, address: str, reason: str) -> None:
    await runtime.db.fetch_one(
        """INSERT INTO notify.suppressions (address_hash, reason, source)
           VALUES (%s, %s, 'test') RETURNING reason""",
        (runtime.cipher.lookup_hash(address), reason),
    )


async def send(api_url: str, token_for: Any, user_ids: list[str], kind: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(
            "/api/notifications/send",
            json={"userIds": user_ids, "type": kind, "title": kind, "message": "m",
                  "channels": ["email"]},
            headers={"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"},
        )  # fmt: skip
        assert r.status_code == 202, r.text


@pytest.mark.parametrize("suppressed_when", ["before the send", "before the drain"])
async def test_bounces_stop_all_email_complaints_only_product_email(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, deliverer: Deliverer,
    smtp_sink: SmtpSink, suppressed_when: str,
) -> None:  # fmt: skip
    users = await make_users(4)
    reasons = dict(zip(("bounce", "manual", "complaint", "unsubscribe"), users, strict=True))
    ids = [u.id for u in users]
    if suppressed_when == "before the send":
        for reason, user in reasons.items():
            await suppress(runtime, user.email, reason)
    await send(api_url, token_for, ids, "security_alert")
    await send(api_url, token_for, ids, "vote_activity")
    if suppressed_when == "before the drain":
        for reason, user in reasons.items():
            await suppress(runtime, user.email, reason)
    await deliverer.drain(runtime.db)
    got = {reason: [m["Subject"] for m in smtp_sink.to(user.email)]
           for reason, user in reasons.items()}  # fmt: skip
    assert got == {
        "bounce": [], "manual": [],
        "complaint": ["security_alert"], "unsubscribe": ["security_alert"],
    }  # fmt: skip
