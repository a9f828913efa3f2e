"""Done-when: `kill -9` of `mysetlist worker` mid-delivery, and every accepted notification
still reaches the SMTP sink once a worker runs again. Duplicates can only be messages the
sink accepted in the instant before the kill (their chunk had not committed): counted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from tests.conditions import until
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET
from tests.notify.conftest import SmtpSink

pytestmark = [pytest.mark.db, pytest.mark.slow]
BATCH = 20
CONCURRENCY = 4


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mysetlist", "worker", "--concurrency", str(CONCURRENCY)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def test_kill_9_of_a_worker_mid_delivery_loses_no_accepted_notification(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime,
    smtp_sink: SmtpSink, tmp_path: Any,
) -> None:  # fmt: skip
    env = {
        **os.environ,
        "DATABASE_URL": runtime.database_url,
        "REDIS_URL": runtime.redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "MYSETLIST_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "MYSETLIST_DATA_DIR": str(tmp_path),
        "EMAIL_PROVIDERS": "smtp",
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_sink.port}",
        "NOTIFY_RATE_LIMIT_PER_MINUTE": "0",
        "NOTIFY_BATCH_SIZE": str(BATCH),
        "LOG_LEVEL": "WARNING",
    }
    users = await make_users(600, prefix="crash")
    addresses = {u.email for u in users}
    accepted = 0
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as c:
        headers = {"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"}
        for start in range(0, len(users), 100):
            r = await c.post("/api/notifications/send", headers=headers, json={
                "userIds": [u.id for u in users[start:start + 100]], "type": "account_notice",
                "title": "Crash test", "message": "m", "channels": ["email"]})  # fmt: skip
            assert r.status_code == 202, r.text
            accepted += r.json()["notifications"]
    assert accepted == len(users)

    first = _worker(env)
    try:

        async def some_delivered() -> bool:
            return len(smtp_sink.for_users(addresses)) >= 100

        await until(some_delivered, "the first worker to deliver some", within=120)
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    at_kill = len({m["To"] for m in smtp_sink.for_users(addresses)})
    assert at_kill < len(users), "the kill came too late to catch deliveries in flight"

    second = _worker(env)
    try:

        async def all_delivered() -> bool:
            return {m["To"] for m in smtp_sink.for_users(addresses)} == addresses

        await until(all_delivered, "every accepted notification in the sink", within=120)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=20)
        except subprocess.TimeoutExpired:
            second.kill()
    received = Counter(m["X-MySetlist-Delivery"] for m in smtp_sink.for_users(addresses))
    duplicates = sum(n - 1 for n in received.values())
    print(f"delivered before the kill: {at_kill}; duplicates: {duplicates}")
    # At most the chunks that were in flight in the killed worker's drain jobs.
    assert duplicates <= BATCH * CONCURRENCY
    rows = await runtime.db.fetch_all(
        "SELECT status, count(*) AS n FROM notify.notification_delivery"
        " WHERE user_id = ANY(%s::uuid[]) GROUP BY status",
        ([u.id for u in users],),
    )
    assert rows == [{"status": "sent", "n": len(users)}]
