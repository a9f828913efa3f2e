"""`mysetlist serve` and `demo` run the job worker as a child process (`mysetlist worker`),
still as one command: background jobs then never take the API's event loop or its core.

The child dies with its parent (Linux `PR_SET_PDEATHSIG`, so even a `kill -9` of the parent
leaves no orphan worker), runs in its own process group (a terminal's Ctrl-C reaches the
parent only, which then stops the child with one SIGTERM: no new job, the running ones
finish within the worker's grace period), and is restarted when it dies, after 1, 2, 4 …
up to 30 s. A child that keeps dying young (`QUICK_DEATHS_LIMIT` in a row, each within
`QUICK_DEATH_SECONDS` of its start) is a broken install, not bad luck: the supervisor
stops the server and the command exits 1."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

QUICK_DEATH_SECONDS = 30.0
QUICK_DEATHS_LIMIT = 5
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
# The child's own graceful shutdown (jobs.SHUTDOWN_GRACE_SECONDS) plus its unregistering.
STOP_WAIT_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1
_LINUX = sys.platform.startswith("linux")


def _die_with_parent(parent_pid: int) -> None:
    """In the forked child before exec: SIGTERM when the parent dies; exit at once when it
    died already (between fork and here)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        os._exit(70)
    if os.getppid() != parent_pid:
        os._exit(70)


def fresh_metrics_dir(path: Path) -> Path:
    """An empty directory for the worker's Prometheus multiprocess files (the last run's
    counters must not be added to this one's)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


class WorkerSupervisor:
    """A companion of the API server (cli.py): runs `argv` until the server stops."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.failed = False  # gave up: the command exits 1
        self.child: asyncio.subprocess.Process | None = None
        self.starts = 0

    @classmethod
    def for_worker(
        cls, env: Mapping[str, str], *, extra_args: Sequence[str] = ()
    ) -> WorkerSupervisor:
        return cls([sys.executable, "-m", "mysetlist", "worker", *extra_args], env)

    async def _spawn(self) -> asyncio.subprocess.Process:
        parent = os.getpid()
        child = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, start_new_session=True,
            preexec_fn=(lambda: _die_with_parent(parent)) if _LINUX else None,
        )  # fmt: skip
        self.starts += 1
        log.info("worker process %d started", child.pid, extra={"fields": {"pid": child.pid}})
        return child

    def _forget_live_gauges(self, pid: int) -> None:
        """A dead child's `live*` gauges (queue depths) must not count any more."""
        directory = self.env.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]

    async def _stop(self, child: asyncio.subprocess.Process) -> None:
        if child.returncode is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(child.wait(), STOP_WAIT_SECONDS)
        except TimeoutError:
            log.warning("worker process %d did not stop in %.0f s; killed",
                        child.pid, STOP_WAIT_SECONDS)  # fmt: skip
            child.kill()
            await child.wait()

    async def __call__(self, server: Any) -> None:
        quick_deaths = 0
        while True:
            began = time.monotonic()
            child = self.child = await self._spawn()
            try:
                code = await child.wait()
            except asyncio.CancelledError:
                # The server stops: so does the worker, gracefully (shielded, so a second
                # cancellation cannot leave it running).
                await asyncio.shield(self._stop(child))
                raise
            lived = time.monotonic() - began
            self._forget_live_gauges(child.pid)
            quick_deaths = quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
            fields = {"pid": child.pid, "returncode": code, "seconds": round(lived, 1)}
            if quick_deaths >= QUICK_DEATHS_LIMIT:
                log.error(
                    "worker process exited %d times in a row within %.0f s of starting"
                    " (last: code %s); stopping: see the worker's log lines above",
                    quick_deaths, QUICK_DEATH_SECONDS, code, extra={"fields": fields},
                )  # fmt: skip
                self.failed = True
                server.should_exit = True
                return
            delay = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** max(0, quick_deaths - 1))
            log.warning(
                "worker process %d exited with code %s after %.1f s; restarting in %.0f s",
                child.pid, code, lived, delay, extra={"fields": fields},
            )  # fmt: skip
            await asyncio.sleep(delay)  # the backoff itself, not a wait for a condition
