"""Helpers for the tracking tests: row counts, serving an extra app, JSON posts.

The shared test API (`api_url`) gets generous rate limits and no write-key cache, so
tests do not trip over each other; the rate-limit test serves its own app with tight ones.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

os.environ.setdefault("MYSETLIST_RATE_LIMIT_ANONYMOUS", "100000/second")
os.environ.setdefault("MYSETLIST_RATE_LIMIT_USER", "100000/second")
os.environ.setdefault("MYSETLIST_WRITE_KEY_CACHE_SECONDS", "0")

from mysetlist.core.runtime import Runtime


async def count_events(runtime: Runtime, where: str = "TRUE", params: Any = None) -> int:
    async with runtime.db.transaction() as conn:
        cur = await conn.execute(
            f"SELECT count(*) FROM analytics.user_events WHERE {where}", params
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve `app` under a real uvicorn on a loopback port in a thread."""
    port = free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
