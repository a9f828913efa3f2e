"""The HTTP contract of privacy: erasure requests and their status, the audit trail (the
export is a ZIP stream, declared on its route)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from mysetlist.core.audit import Outcome


class ErasureStatus(StrEnum):
    pending = "pending"
    done = "done"


class ErasureSource(StrEnum):
    self_ = "self"
    operator = "operator"
    cli = "cli"


class ErasureAccepted(BaseModel):
    erasure_request: int = Field(description="the request's id (GET /api/privacy/erasures/{id})")
    status: ErasureStatus
    created: bool = Field(description="false: a pending request of this user was returned")


class ErasureRead(BaseModel):
    id: int
    status: ErasureStatus
    source: ErasureSource
    requested_by_role: str
    requested_at: datetime
    finished_at: datetime | None
    attempts: int
    counts: dict[str, dict[str, int]] = Field(description="per table: rows by what was done")
    redis_keys: int = Field(description="Redis keys removed")
    models: dict[str, str] = Field(description="model artifacts scrubbed, and how")


class AuditEntry(BaseModel):
    id: int
    at: datetime
    action: str
    outcome: Outcome
    actor_id: uuid.UUID | None
    actor_role: str | None
    target_type: str | None
    target_id: str | None
    request_id: str | None
    ip: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_before_id: int | None = Field(description="pass as `before_id` for the next page")
