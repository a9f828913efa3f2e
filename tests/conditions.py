"""Waiting on a condition, the one way tests do it: poll until the condition holds, fail
naming what was awaited once `within` seconds have passed. The pause between polls is only
a polling interval; no test waits a fixed time for something to happen."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
POLL_SECONDS = 0.05


def wait_until(condition: Callable[[], T | None], what: str, *, within: float = 30) -> T:
    """Poll `condition` until it returns something truthy; return that (a condition answers
    None or something falsy while it does not hold yet)."""
    deadline = time.monotonic() + within
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        time.sleep(POLL_SECONDS)
    return value


async def until(
    condition: Callable[[], Awaitable[T | None]], what: str, *, within: float = 30
) -> T:
    """Poll the async `condition` until it returns something truthy; return that."""
    deadline = time.monotonic() + within
    # The condition lives outside this task (a database, a server): nothing to await but
    # the next poll.
    while not (value := await condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)
    return value


def first_answer(url: str, process: subprocess.Popen[Any], *, within: float = 60) -> httpx.Response:
    """The first HTTP answer of `url`, served by `process` (a server starting); fails naming
    its exit and its stderr if it ends before it answers."""

    def answered() -> httpx.Response | None:
        if process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"exited ({process.returncode}) before {url} answered: {stderr}")
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            return None  # not listening yet

    return wait_until(answered, f"{url} to answer", within=within)
