"""The audit trail (`analytics.audit_log`, append-only: see core/migrations/0004_audit_log.sql).

Every capability records security-relevant actions here, in the transaction of the action
itself when there is one (an ETL trigger, an erasure request), so an entry exists exactly
when the action happened:

    await record_audit(conn, "warehouse.etl_trigger", actor=claims, target=("etl_run", run_id),
                       ip=client_ip(request))

Action names follow `<capability>.<what>`; outcome is `success`, `failure` or `denied`. The
request id comes from the request context (core/http_middleware.py), so an entry can be
matched with the request's log lines. Details must not carry personal data beyond the
actor and target columns (which erasure blanks).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, Literal

import orjson
import psycopg
from psycopg import AsyncConnection

from mysetlist.core.db import read_sql
from mysetlist.core.json_logging import request_id_var

if TYPE_CHECKING:
    from fastapi import Request

    from mysetlist.core.auth import Claims

Outcome = Literal["success", "failure", "denied"]
_PACKAGE = "mysetlist.core"


def client_ip(request: Request) -> str | None:
    """The caller's address as the server saw it (a proxy's, behind one)."""
    host = request.client.host if request.client else None
    if host is None:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


async def record_audit(
    conn: AsyncConnection[Any],
    action: str,
    *,
    outcome: Outcome = "success",
    actor: Claims | None = None,
    actor_id: str | None = None,
    actor_role: str | None = None,
    target: tuple[str, object] | None = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one entry on `conn` (inside the caller's transaction); returns its id."""
    if actor is not None:
        actor_id, actor_role = actor.user_id, ("operator" if actor.is_operator else actor.role)
    cur = await conn.execute(
        read_sql(_PACKAGE, "audit_insert.sql"),
        {
            "action": action,
            "outcome": outcome,
            "actor_id": actor_id,
            "actor_role": actor_role,
            "target_type": target[0] if target else None,
            "target_id": str(target[1]) if target else None,
            "request_id": request_id_var.get(),
            "ip": ip,
            "details": orjson.dumps(details or {}, default=str).decode(),
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def audit_request(
    request: Request,
    action: str,
    *,
    actor: Claims | None,
    target: tuple[str, object] | None = None,
    outcome: Outcome = "success",
    details: dict[str, Any] | None = None,
) -> None:
    """Record an action a route just carried out (its own transaction: the action has
    committed by then). For actions with a transaction of their own, prefer `record_audit`
    inside it."""
    db = request.app.state.runtime.db
    async with db.as_owner("why: the audit trail is no fan's to write") as conn:
        await record_audit(
            conn, action, outcome=outcome, actor=actor, target=target,
            ip=client_ip(request), details=details,
        )  # fmt: skip


def record_audit_sync(
    conn: psycopg.Connection[Any],
    action: str,
    *,
    actor_role: str | None = None,
    target: tuple[str, object] | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """`record_audit` for the synchronous administration commands (e.g. write keys)."""
    conn.execute(
        read_sql(_PACKAGE, "audit_insert.sql"),
        {
            "action": action, "outcome": "success", "actor_id": None,
            "actor_role": actor_role, "target_type": target[0] if target else None,
            "target_id": str(target[1]) if target else None,
            "request_id": request_id_var.get(), "ip": None,
            "details": orjson.dumps(details or {}, default=str).decode(),
        },
    )  # fmt: skip
