"""The push subscription API's answer (the bodies it takes are in `routes.py`)."""

from __future__ import annotations

from pydantic import BaseModel


class PushSubscriptionRead(BaseModel):
    id: int
