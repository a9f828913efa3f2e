"""Operators revoke a user's tokens: `POST /api/auth/users/{user_id}/revoke-tokens`.

Every token and dashboard session of the user issued until now stops working (401): at once
in this process, within MYSETLIST_TOKEN_REVOCATION_REFRESH_SECONDS in every other. The user
signs in again for a new token. Audited as `auth.tokens_revoked`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from mysetlist.core.audit import client_ip, record_audit
from mysetlist.core.auth import Operator
from mysetlist.core.errors import problem_responses
from mysetlist.core.runtime import RuntimeDep
from mysetlist.core.token_revocation import revoke_user_tokens

router = APIRouter(tags=["auth"])


class Revoked(BaseModel):
    user_id: uuid.UUID
    valid_after: datetime


@router.post(
    "/api/auth/users/{user_id}/revoke-tokens",
    summary="Revoke every token and dashboard session of a user issued until now (operators)",
    responses=problem_responses(401, 403),
)
async def revoke_tokens(
    request: Request, runtime: RuntimeDep, claims: Operator, user_id: uuid.UUID
) -> Revoked:
    async with runtime.db.transaction() as conn:
        valid_after = await revoke_user_tokens(conn, str(user_id), runtime.revocations)
        await record_audit(
            conn, "auth.tokens_revoked", actor=claims, target=("user", user_id),
            ip=client_ip(request),
        )  # fmt: skip
    return Revoked(user_id=user_id, valid_after=datetime.fromtimestamp(valid_after, UTC))
