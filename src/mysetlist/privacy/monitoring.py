"""Security monitoring of every HTTP response: failed authentications (401), refusals
(403) and rate-limit hits (429) counted in /metrics by kind and source (the API area the
request went to), each one recorded in the audit trail, and an alert when one client
passes MYSETLIST_SECURITY_ALERT_PER_MINUTE within a minute: an audit event and the gauge
`mysetlist_security_alert` set to 1 (it falls back to 0 once a quiet minute has passed).

Audit writes run as background tasks, at most `_MAX_PENDING` at once: a flood of bad
tokens must not turn into a flood of database writes (the counters still count them all).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from prometheus_client import Gauge
from starlette.types import Scope

from mysetlist.core.audit import record_audit
from mysetlist.core.db import unmark_caller_request
from mysetlist.core.security_events import count_security_event

log = logging.getLogger(__name__)

SECURITY_ALERT = Gauge(
    "mysetlist_security_alert", "1 while a client exceeds the security-event threshold", ["kind"]
)
_KINDS = {401: "auth_failed", 403: "forbidden", 429: "rate_limited"}
_ACTIONS = {401: "security.auth_failed", 403: "security.forbidden", 429: "security.rate_limited"}
_MAX_PENDING = 32
_WINDOW = 60.0
_pending: set[asyncio.Task[None]] = set()
_recent: dict[tuple[str, str], deque[float]] = {}
_alerted_at: dict[str, float] = {}


def count(kind: str, source: str) -> None:
    """Count one event (see core/security_events.py, which other capabilities call)."""
    count_security_event(kind, source)


def _source(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return parts[1][:32]
    return parts[0][:32] if parts else "root"


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _threshold() -> int:
    from mysetlist.privacy.config import load_privacy_settings

    return load_privacy_settings().security_alert_per_minute


def _over_threshold(kind: str, client: str, now: float, limit: int) -> bool:
    window = _recent.setdefault((kind, client), deque())
    window.append(now)
    while window and window[0] < now - _WINDOW:
        window.popleft()
    if len(_recent) > 10_000:  # forget quiet clients
        for key in [k for k, w in _recent.items() if not w or w[-1] < now - _WINDOW]:
            del _recent[key]
    return len(window) == limit  # once per crossing, not for every event after it


def _schedule(
    scope: Scope, action: str, details: dict[str, Any], outcome: str, *, always: bool = False
) -> None:
    app = scope.get("app")
    runtime = getattr(getattr(app, "state", None), "runtime", None)
    if runtime is None or (len(_pending) >= _MAX_PENDING and not always):
        return

    async def write() -> None:
        unmark_caller_request()  # a fire-and-forget write, not the request it follows
        try:
            async with runtime.db.transaction() as conn:
                await record_audit(
                    conn, action, outcome=outcome,  # type: ignore[arg-type]
                    ip=_client(scope), details=details,
                )  # fmt: skip
        except Exception:
            log.warning("could not record %s in the audit trail", action, exc_info=True)

    try:
        task = asyncio.get_running_loop().create_task(write())
    except RuntimeError:
        return
    _pending.add(task)
    task.add_done_callback(_pending.discard)


def observe_response(scope: Scope, status: int, seconds: float) -> None:
    kind = _KINDS.get(status)
    now = time.monotonic()
    for alerted_kind, at in list(_alerted_at.items()):
        if at < now - _WINDOW:
            SECURITY_ALERT.labels(alerted_kind).set(0)
            del _alerted_at[alerted_kind]
    if kind is None:
        return
    path = str(scope.get("path", ""))
    source = _source(path)
    count_security_event(kind, source)
    details = {"method": scope.get("method"), "path": path[:200], "status": status}
    _schedule(scope, _ACTIONS[status], details, "denied")
    client = _client(scope)
    limit = _threshold()
    if client is not None and _over_threshold(kind, client, now, limit):
        SECURITY_ALERT.labels(kind).set(1)
        _alerted_at[kind] = now
        log.warning("security alert: %s %s events in a minute from one client", limit, kind)
        _schedule(
            scope,
            "security.alert",
            {**details, "kind": kind, "per_minute": limit},
            "failure",
            always=True,  # the alert is recorded even when a flood fills the write budget
        )
