"""The HTTP contract of tracking: what each route answers (and, for our own event endpoint,
what it takes), as pydantic models for `/openapi.json`.

The ingest routes read their bodies themselves (gzip, deflate, base64, form-encoded) and
validate each event once, in `wire`; their request bodies are declared in the schema, not
validated a second time by FastAPI, and their answers are written without a model pass."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from mysetlist.tracking.signed_ids import IdKind
from mysetlist.tracking.wire.own import TrackEvent


class EventsAccepted(BaseModel):
    accepted: int = Field(ge=0, description="events committed by this request")


def _track_request_body() -> dict[str, Any]:
    """`POST /api/analytics/events` takes one event or `{"events": [...]}`."""
    event = TrackEvent.model_json_schema()
    assert "$defs" not in event, "inline schema: an event must not refer to other models"
    batch = {
        "type": "object",
        "title": "TrackBatch",
        "properties": {"events": {"type": "array", "items": event}},
        "required": ["events"],
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"anyOf": [event, batch]}}},
        }
    }


TRACK_REQUEST_BODY = _track_request_body()


class AnonymousIds(BaseModel):
    anonymous_id: str = Field(description="server-signed; send it as the event's anonymous_id")
    session_id: str = Field(description="server-signed; send it as the event's session_id")
    expires_at: datetime
    renewed: list[IdKind] = Field(description="the current tokens that were renewed")


class EventRead(BaseModel):
    event_id: uuid.UUID
    message_id: str | None
    user_id: uuid.UUID | None
    anonymous_id: str | None
    session_id: str | None
    event_type: str
    page_url: str | None
    properties: dict[str, Any]
    source: str
    created_at: datetime
    received_at: datetime


class EventPage(BaseModel):
    user_id: uuid.UUID
    events: list[EventRead]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class LiveStatus(StrEnum):
    ok = "ok"
    degraded = "degraded"


class MinuteEvents(BaseModel):
    minute: int = Field(description="the minute's start, Unix seconds")
    events: dict[str, int]


class ActiveShow(BaseModel):
    show_id: str
    score: int


class LiveMetrics(BaseModel):
    status: Literal[LiveStatus.ok]
    generated_at: float
    active_window_seconds: int
    concurrent_users: int
    concurrent_visitors: int
    active_sessions: int
    votes_last_hour: int
    events_last_hour: dict[str, int]
    events_per_minute: list[MinuteEvents]
    active_shows: list[ActiveShow]


class LiveMetricsDegraded(BaseModel):
    status: Literal[LiveStatus.degraded]
    detail: str
    generated_at: float


LiveMetricsRead = Annotated[LiveMetrics | LiveMetricsDegraded, Field(discriminator="status")]


class SegmentAck(BaseModel):
    success: Literal[True]


class PostHogAck(BaseModel):
    status: Literal[1]
