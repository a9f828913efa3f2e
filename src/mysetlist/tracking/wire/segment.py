"""Segment's HTTP tracking API (`/v1/batch`, `/v1/track|identify|page|screen|group|alias`).

`userId` is the platform user id (a uuid). A `userId` that is not a uuid is not a platform
user: the event is stored anonymous (`anonymous_id` = `anonymousId`, or the `userId` itself
when there is none) with the original in `properties.$external_user_id`. An `alias`
(`previousId` → `userId`) names the previous id to link, when the new id is a platform
user. What the ids prove is the one identity rule (`identity_rule`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from mysetlist.tracking.errors import MalformedEvents
from mysetlist.tracking.events import Ingest
from mysetlist.tracking.identity_rule import KeyTrust
from mysetlist.tracking.signed_ids import SignedIds
from mysetlist.tracking.wire.ecosystem import EcosystemBatch
from mysetlist.tracking.wire.validation import (
    ClientTime,
    EventType,
    Identifier,
    as_uuid,
    client_time,
    read_sent_at,
    validate_sized,
)

MAX_SEGMENT_BATCH_BYTES = 500 * 1024


class SegmentMessage(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    type: Literal["track", "identify", "page", "screen", "group", "alias"]
    event: EventType | None = None
    name: str | None = None
    userId: Identifier | int | None = None
    anonymousId: Identifier | int | None = None
    messageId: Identifier | None = None
    timestamp: ClientTime | None = None
    sentAt: ClientTime | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    previousId: Identifier | None = None
    groupId: Identifier | int | None = None


_segment_list = TypeAdapter(list[SegmentMessage])
_SEGMENT_TYPES = {"identify": "identify", "page": "page_view", "screen": "screen_view",
                  "group": "group", "alias": "alias"}  # fmt: skip


def segment_write_key(payload: Any) -> str | None:
    if isinstance(payload, dict):
        key = payload.get("writeKey")
        return key if isinstance(key, str) else None
    return None


def segment_events(
    payload: Any,
    *,
    kind: str | None,
    body_size: int,
    received_at: datetime,
    trust: KeyTrust,
    signed: SignedIds,
    key_scope: bytes = b"",
) -> Ingest:
    """Rows for Segment's `/v1/batch` (`kind` None) or `/v1/track|identify|page` (`kind`),
    and the links they may make with a write key of this `trust`. `key_scope` names the
    write key (dedup_sender)."""
    if not isinstance(payload, dict):
        raise MalformedEvents("the body must be a JSON object", [])
    if kind is None:
        if body_size > MAX_SEGMENT_BATCH_BYTES:
            raise MalformedEvents(
                f"batch is {body_size} bytes; the limit is {MAX_SEGMENT_BATCH_BYTES}", []
            )
        items = payload.get("batch")
        if not isinstance(items, list) or not items:
            raise MalformedEvents(
                "batch must be a non-empty array",
                [{"index": 0, "field": "batch", "message": "expected a non-empty array"}],
            )
        shared_context = payload.get("context") if isinstance(payload.get("context"), dict) else {}
        batch_sent_at = read_sent_at(payload, "sentAt")
    else:
        items = [{"type": kind, **payload}]
        shared_context = {}
        batch_sent_at = None  # a single call carries sentAt on the message itself
    cleaned = [
        {k: v for k, v in item.items() if k != "writeKey"} if isinstance(item, dict) else item
        for item in items
    ]
    messages = validate_sized(_segment_list, cleaned)
    batch = EcosystemBatch(
        "segment", received_at=received_at, trust=trust, signed=signed, key_scope=key_scope
    )
    for i, msg in enumerate(messages):
        if msg.type == "track" and not msg.event:
            batch.refuse(i, "event", "track needs an event name")
            continue
        if msg.userId is None and msg.anonymousId is None:
            batch.refuse(i, "userId", "userId or anonymousId is required")
            continue
        props: dict[str, Any] = dict(msg.properties or {})
        if msg.type in ("identify", "group") and msg.traits:
            props = {**props, "traits": msg.traits}
        if msg.type in ("page", "screen") and msg.name:
            props.setdefault("name", msg.name)
        if msg.groupId is not None:
            props["group_id"] = str(msg.groupId)
        if msg.previousId is not None:
            props["previous_id"] = msg.previousId
        user = as_uuid(msg.userId)
        anonymous = str(msg.anonymousId) if msg.anonymousId is not None else None
        if msg.userId is not None and user is None:
            props["$external_user_id"] = str(msg.userId)
            anonymous = anonymous or str(msg.userId)
        if msg.type == "alias" and msg.previousId is not None and user is not None:
            # alias(previousId → userId): the previous (anonymous) identity is the one to link
            anonymous = msg.previousId
        context = msg.context or shared_context or {}
        page = context.get("page") if isinstance(context.get("page"), dict) else {}
        page_url = props.get("url") or (page or {}).get("url")
        session = props.get("session_id") or context.get("sessionId")
        who = batch.identify(i, "anonymousId", user, anonymous, session)
        if who is None:
            continue
        event_type = msg.event if msg.type == "track" else _SEGMENT_TYPES[msg.type]
        batch.add(
            who, msg.messageId or uuid.uuid4().hex, str(event_type), page_url, props,
            client_time(msg.timestamp, msg.sentAt or batch_sent_at, received_at),
        )  # fmt: skip
    return batch.ingest()
