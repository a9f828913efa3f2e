"""The inbox API's contract (also each `data:` of its stream)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from mysetlist.notify.api_models import STORED_CATEGORY


class InboxItem(BaseModel):
    """One in-app notification (also each `data:` of the inbox stream)."""

    id: int
    type: str
    category: str = Field(description=STORED_CATEGORY)
    title: str
    message: str
    data: dict[str, Any]
    createdAt: datetime
    readAt: datetime | None


class InboxPage(BaseModel):
    notifications: list[InboxItem]
    unreadCount: int


class UnreadCount(BaseModel):
    unreadCount: int


class MarkedRead(BaseModel):
    id: int
    readAt: datetime


class MarkedAllRead(BaseModel):
    marked: int
