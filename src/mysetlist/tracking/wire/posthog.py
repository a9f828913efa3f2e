"""PostHog's capture API (`/batch/`, `/i/v0/e/`, `/e/`, `/capture/`, `/track/`): one event,
a list, or a batch.

A `distinct_id` that is a uuid is the platform user id, unless the event says it is a
browser's anonymous id (`$is_identified: false`, or `distinct_id == $device_id`, as
posthog-js sends before identify); anything else is an anonymous id. `$identify` names
`properties.$anon_distinct_id` as the id to link; `$create_alias` (`distinct_id` →
`properties.alias`) names the previous id to link, when the new id is a platform user. What
the ids prove is the one identity rule (`identity_rule`)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

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


class PostHogEvent(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    event: EventType
    distinct_id: Identifier | int | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    timestamp: ClientTime | None = None
    offset: Annotated[int, Field(ge=0, le=7 * 24 * 3600 * 1000)] | None = None  # ms
    uuid: Identifier | None = None


_posthog_list = TypeAdapter(list[PostHogEvent])


def posthog_api_key(payload: Any) -> str | None:
    if isinstance(payload, dict):
        for key in ("api_key", "token"):
            if isinstance(payload.get(key), str):
                return str(payload[key])
        props = payload.get("properties")
        if isinstance(props, dict) and isinstance(props.get("token"), str):
            return str(props["token"])
        batch = payload.get("batch")
        if isinstance(batch, list) and batch and isinstance(batch[0], dict):
            return posthog_api_key(batch[0])
    elif isinstance(payload, list) and payload and isinstance(payload[0], dict):
        return posthog_api_key(payload[0])
    return None


def posthog_events(
    payload: Any,
    *,
    received_at: datetime,
    trust: KeyTrust,
    signed: SignedIds,
    key_scope: bytes = b"",
) -> Ingest:
    """Rows for PostHog's `/batch/`, `/i/v0/e/`, `/capture/` (one event, a list, or a batch),
    and the links they may make with a write key of this `trust` (`key_scope`: as for
    Segment)."""
    sent_at = None
    if isinstance(payload, list):
        items = payload
    elif isinstance(payload, dict) and isinstance(payload.get("batch"), list):
        items = payload["batch"]
        sent_at = read_sent_at(payload, "sent_at")
    elif isinstance(payload, dict):
        items = [payload]
        sent_at = read_sent_at(payload, "sent_at")
    else:
        raise MalformedEvents("the body must be a JSON object or array", [])
    if not items:
        raise MalformedEvents("the batch is empty", [])
    events = validate_sized(_posthog_list, items)
    batch = EcosystemBatch(
        "posthog", received_at=received_at, trust=trust, signed=signed, key_scope=key_scope
    )
    for i, ev in enumerate(events):
        props = dict(ev.properties)
        props.pop("token", None)
        distinct = ev.distinct_id if ev.distinct_id is not None else props.get("distinct_id")
        if distinct is None:
            batch.refuse(i, "distinct_id", "distinct_id is required")
            continue
        distinct = str(distinct)
        # posthog-js gives anonymous visitors uuid (v7) distinct ids equal to their
        # $device_id and marks them `$is_identified: false`: those are not platform users.
        browser_anonymous = props.get("$is_identified") is False or (
            props.get("$device_id") == distinct and ev.event != "$identify"
        )
        user = None if browser_anonymous else as_uuid(distinct)
        anonymous = None if user is not None else distinct
        if ev.event == "$identify" and props.get("$anon_distinct_id"):
            anonymous = str(props["$anon_distinct_id"])
        if ev.event == "$create_alias" and (target := as_uuid(props.get("alias"))):
            # alias(previous_id, distinct_id) arrives as distinct_id = the previous id and
            # properties.alias = the new one: when that is a platform user, link the two
            user, anonymous = target, distinct
        who = batch.identify(i, "distinct_id", user, anonymous, props.get("$session_id"))
        if who is None:
            continue
        page_url = props.get("$current_url")
        if ev.timestamp is None and ev.offset is not None:
            # posthog-js without a timestamp: the event happened `offset` ms before sending
            at = received_at - timedelta(milliseconds=ev.offset)
        else:
            ignore_sent_at = props.get("$ignore_sent_at") in (True, "1", "true")
            at = client_time(ev.timestamp, None if ignore_sent_at else sent_at, received_at)
        batch.add(who, ev.uuid or uuid.uuid4().hex, ev.event, page_url, props, at)
    return batch.ingest()
