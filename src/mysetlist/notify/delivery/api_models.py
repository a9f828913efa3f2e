"""The send API's contract: what a send request did, and the send history."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from mysetlist.notify.api_models import Channel, DeliveryStatus, SendRequestState


class SendAccepted(BaseModel):
    """What one send request did (a repeat of its Idempotency-Key answers the same)."""

    requestId: int
    notifications: int = Field(description="notifications created (one per recipient)")
    deliveries: dict[Channel, int] = Field(description="deliveries queued or deferred")
    deferred: int = Field(description="held by quiet hours")
    digested: int = Field(description="folded into a daily or weekly digest")
    throttled: int = Field(description="folded into an earlier notification of the window")
    duplicates: int = Field(description="already notified under the same dedupKey")
    skipped: dict[str, int] = Field(
        default_factory=dict, description="reason (no_channel, unknown_users) -> recipients"
    )


class SendRequestRead(BaseModel):
    request_id: int
    type: str | None = Field(description="the notification type (the column allows null)")
    created_at: datetime
    state: SendRequestState
    caller: uuid.UUID
    idempotency_key: str | None
    notifications: int | None
    channels: dict[Channel, dict[DeliveryStatus, int]]


class SendHistory(BaseModel):
    requests: list[SendRequestRead]
