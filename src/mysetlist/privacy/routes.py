"""HTTP routes of the privacy capability: GDPR export and erasure (the user's own and the
operators' forms), erasure status, and the audit trail for operators. Also the security
monitoring of every response (`response_observers`, see privacy/monitoring.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse

from mysetlist.core.audit import client_ip, record_audit
from mysetlist.core.auth import Claims, CurrentUser, Operator
from mysetlist.core.db import fetch_all_in, read_sql
from mysetlist.core.errors import problem_responses
from mysetlist.core.runtime import Runtime, RuntimeDep
from mysetlist.privacy import monitoring
from mysetlist.privacy.config import load_privacy_settings
from mysetlist.privacy.contract import AuditPage, ErasureAccepted, ErasureRead, ErasureStatus
from mysetlist.privacy.erasure import erasure_status, request_erasure
from mysetlist.privacy.errors import UnknownErasureRequest
from mysetlist.privacy.export import export_archive
from mysetlist.privacy.export_limit import ExportLimiter

router = APIRouter(tags=["privacy"])
response_observers = [monitoring.observe_response]
_PACKAGE = "mysetlist.privacy"
UserId = Annotated[uuid.UUID, Path(description="the user's id")]
# Free-text filters: no control characters (PostgreSQL text cannot hold NUL; a 422 beats a 500).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


def _limiter(request: Request, runtime: Runtime) -> ExportLimiter:
    """The app's export limiter (made on first use: one Redis storage per app)."""
    limiter: ExportLimiter | None = getattr(request.app.state, "privacy_export_limiter", None)
    if limiter is None:
        limiter = ExportLimiter(
            runtime.redis_url,
            key_prefix=runtime.settings.redis_key_prefix,
            limit=load_privacy_settings().export_rate_limit,
        )
        request.app.state.privacy_export_limiter = limiter
    return limiter


# The export is a ZIP stream; its errors are problem documents like every route's.
_EXPORT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
}


async def _export(
    request: Request, runtime: Runtime, claims: Claims, user_id: str
) -> StreamingResponse:
    await _limiter(request, runtime).check(claims.user_id)
    async with runtime.db.as_owner("why: the audit trail is no fan's to write") as conn:
        await record_audit(
            conn, "privacy.export", actor=claims, target=("user", user_id), ip=client_ip(request)
        )
    return StreamingResponse(
        export_archive(runtime.db, runtime.cipher, user_id),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="mysetlist-export-{user_id}.zip"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/api/privacy/export",
    response_class=StreamingResponse,
    responses={**_EXPORT_RESPONSES, **problem_responses(401, 429)},
)
async def export_mine(
    request: Request, runtime: RuntimeDep, claims: CurrentUser
) -> StreamingResponse:
    """Everything held about the caller: a ZIP of JSON Lines, one file per table, and a
    manifest. Rate limited (MYSETLIST_PRIVACY_EXPORT_RATE_LIMIT) and audited."""
    return await _export(request, runtime, claims, claims.user_id)


@router.get(
    "/api/privacy/users/{user_id}/export",
    response_class=StreamingResponse,
    responses={**_EXPORT_RESPONSES, **problem_responses(401, 403, 429)},
)
async def export_user(
    request: Request, runtime: RuntimeDep, claims: Operator, user_id: UserId
) -> StreamingResponse:
    """The export of any user, for operators."""
    return await _export(request, runtime, claims, str(user_id))


async def _erase(
    request: Request,
    runtime: Runtime,
    claims: Claims,
    user_id: str,
    source: Literal["self", "operator"],
) -> ErasureAccepted:
    request_id, created = await request_erasure(
        runtime.db, user_id, requested_by=claims.user_id,
        requested_by_role="operator" if claims.is_operator else claims.role,
        source=source, revocations=runtime.revocations, ip=client_ip(request),
    )  # fmt: skip
    return ErasureAccepted(
        erasure_request=request_id, status=ErasureStatus.pending, created=created
    )


@router.delete("/api/privacy/me", status_code=202, responses=problem_responses(401))
async def erase_me(request: Request, runtime: RuntimeDep, claims: CurrentUser) -> ErasureAccepted:
    """Erase everything about the caller. Accepted at once, carried out by a worker
    (durable: it finishes after a crash); the answer names the request."""
    return await _erase(request, runtime, claims, claims.user_id, "self")


@router.delete(
    "/api/privacy/users/{user_id}", status_code=202, responses=problem_responses(401, 403)
)
async def erase_user(
    request: Request, runtime: RuntimeDep, claims: Operator, user_id: UserId
) -> ErasureAccepted:
    """Erase everything about any user, for operators."""
    return await _erase(request, runtime, claims, str(user_id), "operator")


@router.get("/api/privacy/erasures/{request_id}", responses=problem_responses(401, 403, 404))
async def erasure(
    runtime: RuntimeDep,
    claims: Operator,
    request_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> ErasureRead:
    """An erasure request's status and counts per table (never the erased identifiers)."""
    status = await erasure_status(runtime.db, request_id)
    if status is None:
        raise UnknownErasureRequest(f"no erasure request {request_id}")
    return ErasureRead.model_validate(status)


@router.get("/api/privacy/audit", responses=problem_responses(401, 403))
async def audit_trail(
    runtime: RuntimeDep,
    claims: Operator,
    action: Annotated[str | None, Query(max_length=100, pattern=r"^[a-z_]+\.[a-z_]+$")] = None,
    outcome: Annotated[Literal["success", "failure", "denied"] | None, Query()] = None,
    actor_id: Annotated[uuid.UUID | None, Query()] = None,
    target_id: Annotated[str | None, Query(max_length=200, pattern=PRINTABLE)] = None,
    request_id: Annotated[str | None, Query(max_length=200, pattern=PRINTABLE)] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """The audit trail, newest first, filtered; page with `before_id` (the last id seen)."""
    async with runtime.db.transaction() as conn:
        rows = await fetch_all_in(
            conn,
            read_sql(_PACKAGE, "audit_query.sql"),
            {
                "action": action, "outcome": outcome,
                "actor_id": str(actor_id) if actor_id else None, "target_id": target_id,
                "request_id": request_id, "since": since, "until": until,
                "before_id": before_id, "limit": limit,
            },
        )  # fmt: skip
    return AuditPage.model_validate(
        {"entries": rows, "next_before_id": rows[-1]["id"] if len(rows) == limit else None}
    )
