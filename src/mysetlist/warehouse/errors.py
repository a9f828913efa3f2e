"""How an ETL run ends badly: the exceptions it raises, which of them are worth retrying,
and how an error is described on the run's row; and what the run service refuses, as
core's domain error kinds (core/errors.py answers them over HTTP)."""

from __future__ import annotations

import asyncio

import psycopg

from mysetlist.core.errors import Conflict, NotFound


class RunInProgress(Conflict):
    """A run was asked for while another is queued or running (`active_run_id`)."""

    def __init__(self, active_run_id: int | None) -> None:
        super().__init__("an ETL run is already queued or running", active_run_id=active_run_id)
        self.active_run_id = active_run_id


class NoActiveRun(NotFound):
    """A cancel with no run queued or running."""

    def __init__(self) -> None:
        super().__init__("no ETL run is queued or running")


class UnknownRun(NotFound):
    def __init__(self, run_id: int) -> None:
        super().__init__(f"no ETL run {run_id}")


class EtlBusy(Exception):
    """Another run is queued or running."""


class EtlTransient(Exception):
    """The run failed for a reason worth retrying (connection lost, lock contention)."""


class EtlFailed(Exception):
    """The run failed; the error is recorded on the run."""


class EtlCancelled(Exception):
    """A cancel was requested for the run."""


# Errors after which a day's transaction has rolled back whole and can simply run again.
RETRYABLE_IN_TRANSACTION = (
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.LockNotAvailable,
)


def describe(exc: BaseException) -> str:
    """One line for `etl_runs.error`: the type, the server's message and where it was."""
    if isinstance(exc, psycopg.Error):
        diag = exc.diag
        text = f"{type(exc).__name__}: {diag.message_primary or exc}"
        if diag.context:
            text += f" ({diag.context.splitlines()[0]})"
        return text
    return f"{type(exc).__name__}: {exc}"


def is_transient(exc: BaseException) -> bool:
    """Whether the job queue should run the whole run again later."""
    if isinstance(exc, EtlBusy):
        return True
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return False  # a timeout: retrying would time out again
    return isinstance(
        exc,
        psycopg.OperationalError
        | psycopg.errors.SerializationFailure
        | psycopg.errors.DeadlockDetected,
    )


def most_telling(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception of a task group to act on: a cancel beats the rest, and a task's own
    error beats the CancelledErrors of its siblings."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for inner in e.exceptions:
                walk(inner)
        else:
            leaves.append(e)

    walk(group)
    for e in leaves:
        if isinstance(e, EtlCancelled):
            return e
    for e in leaves:
        if not isinstance(e, asyncio.CancelledError):
            return e
    return leaves[0]
