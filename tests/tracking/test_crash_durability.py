"""Done-when: `kill -9` of `mysetlist api` mid-load loses no acknowledged event, and clients
re-sending what was not acknowledged (as SDKs do) store each event exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from tests.conditions import first_answer
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, free_port

pytestmark = [pytest.mark.db, pytest.mark.slow]


async def _start_api(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """`mysetlist api` on a free port, once /healthz answers."""
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 (start once, then only signals)
        [sys.executable, "-m", "mysetlist", "api", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    healthy = await asyncio.to_thread(first_answer, f"{base}/healthz", proc, within=30)
    assert healthy.status_code == 200, healthy.text
    return proc, base


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def test_kill_9_mid_load_loses_nothing_and_resending_stores_once(
    database_url: str, redis_url: str, settings: Settings, runtime: Runtime, tmp_path: Any
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "MYSETLIST_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "MYSETLIST_WRITE_KEYS": ",".join(settings.write_keys),
        "MYSETLIST_DATA_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
    }
    run = uuid.uuid4().hex[:8]
    anonymous_id = f"crash-{run}"

    def batch(ids: list[str]) -> dict[str, Any]:
        return {"events": [{"event_type": "page_view", "anonymous_id": anonymous_id,
                            "message_id": m} for m in ids]}  # fmt: skip

    acked: list[str] = []
    attempted: list[list[str]] = []  # every batch a client sent, acknowledged or not
    unacknowledged: list[list[str]] = []
    proc, base = await _start_api(env)
    try:
        stop = asyncio.Event()

        async def client(n: int) -> None:
            limits = httpx.Limits(max_connections=1)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=5) as c:
                i = 0
                while not stop.is_set():
                    ids = [f"{run}-{n}-{i}-{k}" for k in range(10)]
                    i += 1
                    attempted.append(ids)
                    try:
                        r = await c.post("/api/analytics/events", json=batch(ids))
                    except httpx.TransportError:
                        unacknowledged.append(ids)
                        return  # the server died under us: not acknowledged
                    if r.status_code == 202:
                        acked.extend(ids)
                    else:
                        unacknowledged.append(ids)

        async def killer() -> None:
            while len(acked) < 3000:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)  # mid-load: clients are in flight
            stop.set()

        await asyncio.wait_for(asyncio.gather(killer(), *(client(n) for n in range(16))), 60)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        _stop(proc)

    sent = {m for ids in attempted for m in ids}
    stored = await runtime.db.fetch_all(
        "SELECT message_id FROM analytics.user_events WHERE anonymous_id = %s", (anonymous_id,)
    )
    stored_ids = {r["message_id"] for r in stored}
    missing = set(acked) - stored_ids
    assert len(acked) >= 3000
    assert not missing, f"{len(missing)} acknowledged events lost"
    # in-flight requests at the kill may or may not have committed, never more than sent
    assert stored_ids <= sent
    assert len(stored_ids) == len(stored)  # and nothing twice
    assert unacknowledged  # the kill caught requests in flight

    # The clients retry what was not acknowledged (some of it committed before the kill,
    # unknown to them), and one re-sends an acknowledged batch too: each event once.
    proc, base = await _start_api(env)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            for ids in [*unacknowledged, attempted[0]]:
                r = await c.post("/api/analytics/events", json=batch(ids))
                assert r.status_code == 202, r.text
    finally:
        _stop(proc)
    stored = await runtime.db.fetch_all(
        "SELECT message_id FROM analytics.user_events WHERE anonymous_id = %s", (anonymous_id,)
    )
    assert len(stored) == len({r["message_id"] for r in stored})  # nothing twice
    assert {r["message_id"] for r in stored} == {m for ids in attempted for m in ids}
