"""What the provider webhooks answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class WebhookApplied(BaseModel):
    applied: int = Field(description="events applied now")
    repeated: int = Field(description="events applied before (replays)")


class SnsSubscriptionConfirmed(BaseModel):
    confirmed: Literal[True]


class SnsUnsubscribed(BaseModel):
    """An SNS UnsubscribeConfirmation, acknowledged (an empty object)."""

    model_config = ConfigDict(extra="forbid")


SesWebhookAnswer = WebhookApplied | SnsSubscriptionConfirmed | SnsUnsubscribed
