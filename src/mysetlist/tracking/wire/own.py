"""Our own endpoint, `POST /api/analytics/events`: one event or `{"events": [...]}`, the
user from the JWT only (`identity_rule`), strict about unknown fields."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from mysetlist.tracking.errors import InvalidEvents, MalformedEvents, TooManyEvents, UserInBody
from mysetlist.tracking.events import EventRow, IdentityLink, Ingest, dedup_sender
from mysetlist.tracking.identity_rule import proven_links, resolve_id
from mysetlist.tracking.signed_ids import SignedIds
from mysetlist.tracking.wire.validation import (
    MAX_EVENT_BYTES,
    ClientTime,
    EventType,
    Identifier,
    Url,
    as_utc,
    field_errors,
    properties_json,
    too_big_error,
    unproven_id_error,
)


class TrackEvent(BaseModel):
    """`POST /api/analytics/events`: the spec's "Track User Event" shape."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: EventType
    session_id: Identifier | None = None
    anonymous_id: Identifier | None = None
    page_url: Url | None = None
    event_data: dict[str, Any] = Field(default_factory=dict)
    timestamp: ClientTime | None = None
    message_id: Identifier | None = None


_track_list = TypeAdapter(list[TrackEvent])


def own_events(
    payload: Any,
    *,
    user_id: str | None,
    max_batch: int,
    received_at: datetime,
    signed: SignedIds,
) -> Ingest:
    """Rows for `POST /api/analytics/events` (one event, or `{"events": [...]}`), and the
    links the token's user proves by carrying server-signed ids."""
    if not isinstance(payload, dict):
        raise InvalidEvents(
            "the body must be a JSON object",
            [{"index": 0, "field": "body", "message": "expected an object"}],
        )  # fmt: skip
    batch = "events" in payload
    if batch:
        extra = sorted(set(payload) - {"events"})
        if extra:
            raise InvalidEvents(
                "unknown field in the batch envelope",
                [{"index": 0, "field": k, "message": "Extra inputs are not permitted"}
                 for k in extra],
            )  # fmt: skip
        items = payload["events"]
        if not isinstance(items, list):
            raise InvalidEvents(
                "events must be an array",
                [{"index": 0, "field": "events", "message": "expected an array"}],
            )  # fmt: skip
        if not items:
            raise MalformedEvents("the batch is empty", [])
        if len(items) > max_batch:
            raise TooManyEvents(
                f"the batch has {len(items)} events; the limit is {max_batch}",
                [{"index": 0, "field": "events", "message": f"at most {max_batch} events"}],
            )  # fmt: skip
    else:
        items = [payload]
    forged = [
        {"index": i, "field": key, "message": "the user comes from the token, not the body"}
        for i, item in enumerate(items)
        if isinstance(item, dict)
        for key in ("user_id", "userId")
        if key in item
    ]
    if forged:
        raise UserInBody("user_id in the body is not accepted", forged)
    try:
        events = _track_list.validate_python(items)
    except ValidationError as exc:
        raise InvalidEvents(
            "some events are invalid; none were stored", field_errors(exc, batch=True)
        ) from None
    uid = uuid.UUID(user_id) if user_id else None
    now = received_at.timestamp()
    rows: list[EventRow] = []
    links: list[IdentityLink] = []
    errors: list[dict[str, Any]] = []
    user_sender = dedup_sender("user", str(uid)) if uid is not None else None
    for i, ev in enumerate(events):
        props = properties_json(ev.event_data)
        if len(props) > MAX_EVENT_BYTES:
            errors.append(too_big_error(i, len(props)))
            continue
        if uid is None and ev.anonymous_id is None and ev.session_id is None:
            errors.append(
                {"index": i, "field": "anonymous_id",
                 "message": "an anonymous event needs anonymous_id or session_id"}
            )  # fmt: skip
            continue
        try:
            anonymous = resolve_id("anonymous", ev.anonymous_id, signed=signed, trusted=False,
                                   now=now)  # fmt: skip
        except ValueError as exc:
            errors.append(unproven_id_error(i, "anonymous_id", exc))
            continue
        try:
            session = resolve_id("session", ev.session_id, signed=signed, trusted=False, now=now)
        except ValueError as exc:
            errors.append(unproven_id_error(i, "session_id", exc))
            continue
        # Message ids are unique per sender: the token's user, else the anonymous visitor.
        sender = (
            user_sender
            if user_sender is not None
            else dedup_sender("anonymous", anonymous.value or session.value)
        )
        # tuple.__new__: the row without NamedTuple's Python-level __new__ (per event).
        rows.append(
            tuple.__new__(EventRow, (
                ev.message_id or uuid.uuid4().hex, uid, anonymous.value, session.value,
                ev.event_type, ev.page_url, props, "api", as_utc(ev.timestamp, received_at),
                None, sender, anonymous.proven, session.proven,
            ))
        )  # fmt: skip
        if uid is not None:  # only a token's user links ids
            links += proven_links(uid, anonymous, session)
    if errors:
        raise InvalidEvents("some events are invalid; none were stored", errors)
    return Ingest(rows, links)
