"""Our own endpoint, `POST /api/analytics/events`: one event or `{"events": [...]}`, the
user from the JWT only (`identity_rule`), strict about unknown fields.

Two schemas, one answer. `TrackEvent` (pydantic) is the contract: the OpenAPI document, and
every error a client is told. `own_events_fast` decodes and validates a body in one pass
with msgspec (the issue-18 hot path: JSON parse, the nesting walk and pydantic were ~2.6
us of an event's API CPU, msgspec ~1) and gives up, returning None, on anything it does not
accept outright: any decode or validation error, a per-event error, a NUL, an empty or
oversized batch. The caller then runs `own_events`, so a refused body gets exactly the
answer it got before, and an accepted one the same rows (tests/tracking/
test_fast_path_equivalence.py holds both to that on generated bodies).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Protocol

import msgspec
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from mysetlist.tracking.errors import InvalidEvents, MalformedEvents, TooManyEvents, UserInBody
from mysetlist.tracking.events import EventRow, IdentityLink, Ingest, dedup_sender
from mysetlist.tracking.identity_rule import ResolvedId, proven_links, resolve_id
from mysetlist.tracking.signed_ids import PREFIX, IdKind, SignedIds
from mysetlist.tracking.wire.validation import (
    EVENT_TYPE_PATTERN,
    MAX_EVENT_BYTES,
    MAX_EVENT_TYPE_LENGTH,
    ClientTime,
    EventType,
    Identifier,
    Url,
    as_utc,
    field_errors,
    has_nul,
    nesting_within_limit,
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


class _EventFields(Protocol):
    """What row building reads from a validated event, whichever schema validated it."""

    @property
    def event_type(self) -> str: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def anonymous_id(self) -> str | None: ...
    @property
    def page_url(self) -> str | None: ...
    @property
    def event_data(self) -> dict[str, Any]: ...
    @property
    def timestamp(self) -> datetime | None: ...
    @property
    def message_id(self) -> str | None: ...


# The fast path's schema: TrackEvent's constraints in msgspec. The event-type pattern ends
# in \Z, not $: msgspec matches with Python's re, where $ also matches before a final
# newline (pydantic-core's regex does not). A client time is kept raw here and validated
# by pydantic's own ClientTime afterwards, so both paths read a time the same way.
_FastEventType = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=MAX_EVENT_TYPE_LENGTH,
        pattern=EVENT_TYPE_PATTERN.removesuffix("$") + r"\Z",
    ),
]  # fmt: skip
_FastIdentifier = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
_FastUrl = Annotated[str, msgspec.Meta(max_length=4096)]


class _FastEvent(msgspec.Struct, forbid_unknown_fields=True):
    event_type: _FastEventType
    session_id: _FastIdentifier | None = None
    anonymous_id: _FastIdentifier | None = None
    page_url: _FastUrl | None = None
    event_data: dict[str, Any] = {}
    timestamp: Any = None  # validated by ClientTime below
    message_id: _FastIdentifier | None = None


class _FastBatch(msgspec.Struct, forbid_unknown_fields=True):
    events: list[_FastEvent]


_fast_event = msgspec.json.Decoder(_FastEvent)
_fast_batch = msgspec.json.Decoder(_FastBatch)
_client_time: TypeAdapter[datetime | None] = TypeAdapter(ClientTime | None)
ANONYMOUS_PREFIX = PREFIX["anonymous"]
SESSION_PREFIX = PREFIX["session"]


def _resolve_ids(
    index: int, anonymous: str | None, session: str | None, *, signed: SignedIds, now: float
) -> tuple[ResolvedId, ResolvedId] | dict[str, Any]:
    """The event's ids by the identity rule, or the error naming the first one refused."""
    resolved: list[ResolvedId] = []
    ids: tuple[tuple[IdKind, str, str | None], ...] = (
        ("anonymous", "anonymous_id", anonymous), ("session", "session_id", session),
    )  # fmt: skip
    for kind, field, raw in ids:
        try:
            resolved.append(resolve_id(kind, raw, signed=signed, trusted=False, now=now))
        except ValueError as exc:
            return unproven_id_error(index, field, exc)
    return resolved[0], resolved[1]


def _event_rows(
    events: Sequence[_EventFields],
    user_id: str | None,
    received_at: datetime,
    signed: SignedIds,
) -> tuple[list[EventRow], list[IdentityLink], list[dict[str, Any]]]:
    """The rows, links and per-event errors of validated events (either schema's)."""
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
        raw_anonymous = ev.anonymous_id
        raw_session = ev.session_id
        if uid is None and raw_anonymous is None and raw_session is None:
            errors.append(
                {"index": i, "field": "anonymous_id",
                 "message": "an anonymous event needs anonymous_id or session_id"}
            )  # fmt: skip
            continue
        # The identity rule (`resolve_id`) runs only when an id is shaped like a token (its
        # prefix); any other id is stored as sent and unproven: that common answer inline,
        # as two calls per event were ~4 % of an ingest worker.
        anonymous, anonymous_proven = raw_anonymous, False
        session, session_proven = raw_session, False
        if (raw_anonymous or "").startswith(ANONYMOUS_PREFIX) or (raw_session or "").startswith(
            SESSION_PREFIX
        ):
            resolved = _resolve_ids(i, raw_anonymous, raw_session, signed=signed, now=now)
            if isinstance(resolved, dict):
                errors.append(resolved)
                continue
            (anonymous, anonymous_proven), (session, session_proven) = resolved
        # Message ids are unique per sender: the token's user, else the anonymous visitor.
        sender = (
            user_sender
            if user_sender is not None
            else dedup_sender("anonymous", anonymous or session)
        )
        ts = ev.timestamp
        # tuple.__new__: the row without NamedTuple's Python-level __new__ (per event).
        rows.append(
            tuple.__new__(EventRow, (
                ev.message_id or uuid.uuid4().hex, uid, anonymous, session, ev.event_type,
                ev.page_url, props, "api", received_at if ts is None else as_utc(ts, received_at),
                None, sender, anonymous_proven, session_proven,
            ))
        )  # fmt: skip
        # Only a token's user links ids, and only proven ones.
        if uid is not None and (anonymous_proven or session_proven):
            links += proven_links(
                uid, ResolvedId(anonymous, anonymous_proven), ResolvedId(session, session_proven)
            )
    return rows, links, errors


def own_events_fast(
    body: bytes,
    *,
    user_id: str | None,
    max_batch: int,
    received_at: datetime,
    signed: SignedIds,
) -> Ingest | None:
    """`own_events(parse_json(body), ...)` for a body it accepts, in one msgspec pass; None
    when in any doubt (the caller then runs the pydantic path, which names the error)."""
    if has_nul(body):
        return None
    batch = b'"events"' in body
    try:
        events = _fast_batch.decode(body).events if batch else [_fast_event.decode(body)]
    except Exception:  # any refusal (msgspec raises TypeError for an int beyond 64 bits)
        return None
    if not events or len(events) > max_batch:
        return None
    # The envelope's shape is fixed by the schema; only event_data nests (level 4 in a
    # batch: body, events, event, event_data; level 2 in a lone event).
    if not nesting_within_limit([e.event_data for e in events], above=2 if batch else 0):
        return None
    for ev in events:
        if ev.timestamp is not None:
            try:
                ev.timestamp = _client_time.validate_python(ev.timestamp)
            except ValidationError:
                return None
    try:
        rows, links, errors = _event_rows(events, user_id, received_at, signed)  # type: ignore[arg-type]
    except TypeError:  # an int beyond 64 bits in event_data (orjson reads it as a float)
        return None
    if errors:
        return None
    return Ingest(rows, links)


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
    rows, links, errors = _event_rows(events, user_id, received_at, signed)
    if errors:
        raise InvalidEvents("some events are invalid; none were stored", errors)
    return Ingest(rows, links)
