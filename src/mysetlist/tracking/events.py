"""Event shapes accepted on the wire (ours, Segment's, PostHog's) and their one stored shape.

Validation is pydantic v2. Our own endpoint is strict (`extra="forbid"`: an unknown field is
a 422 naming it); the Segment and PostHog shapes are lenient about extra fields (their
clients send `context`, `integrations`, `$lib` …) but strict about the ones we store.
Everything becomes an `EventRow`, the column order of the group-commit COPY.

Identity rules (who an event belongs to, and which ids it may link to a user):
- Our endpoint: `user_id` comes from the JWT only; a `user_id` in the body is refused. The
  event's `anonymous_id` / `session_id` link to that user only when they are valid tokens
  the server signed (`signed_ids.py`): holding one proves possession. A token is stored as
  the stable id it carries (never the token itself). Any other id stays on the event as an
  attribute and links nothing. An anonymous event gets a linked user at insert only when it
  proves its id the same way (a valid token, or a server key). A bare stable id (a token
  without its signature) and a revoked token are refused, on every endpoint.
- A `server` write key is trusted: its platform user ids (uuids) are the event's user, and
  the ids on its events link to that user (Segment identify/alias, PostHog $identify and
  $create_alias, and any event carrying both, as the SDKs send them).
- A `browser` write key is public: a platform user id it sends is only a claim, kept in
  the `claimed_user_id` column of an anonymous event, and its identify/alias calls link
  nothing. A signed anonymous id proves who holds the id, not who the claimed user is: a
  visitor could otherwise pour their own history into anyone's. A browser links through
  our endpoint, whose JWT proves the user.
- Segment: `userId` is the platform user id (a uuid). A `userId` that is not a uuid is not a
  platform user: the event is stored anonymous (`anonymous_id` = `anonymousId`, or the
  `userId` itself when there is none) with the original in `properties.$external_user_id`.
- PostHog: a `distinct_id` that is a uuid is the platform user id, unless the event says it
  is a browser's anonymous id (`$is_identified: false`, or `distinct_id == $device_id`, as
  posthog-js sends before identify); anything else is an anonymous id. `$identify` names
  `properties.$anon_distinct_id` as the id to link.
- Aliases: Segment `alias` (`previousId` → `userId`) and PostHog `$create_alias`
  (`distinct_id` → `properties.alias`) name the previous id to link, when the new id is a
  platform user.

Dedup: a message id is unique per sender (`dedup_sender`): the token's user, a server write
key, or an anonymous visitor (its ids; for a public browser key, key and ids), so a message
id one sender used first never hides another sender's event.

Times: the client's `timestamp`, corrected for the sender's clock error when the batch says
when it was sent (Segment `sentAt`, PostHog `sent_at`; PostHog `offset` without a
timestamp); without a timestamp, the time we received it.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from mysetlist.tracking.signed_ids import PREFIX, IdKind, SignedIds

MAX_EVENT_BYTES = 32 * 1024  # Segment's per-event limit; we apply it everywhere
MAX_SEGMENT_BATCH_BYTES = 500 * 1024
# Deepest nesting of objects and arrays in a request body (the body itself is level 1).
# Events are shallow; orjson cannot re-serialise beyond 254 levels, and walking unbounded
# depth anywhere would be an easy way to make a request expensive.
MAX_JSON_DEPTH = 32

# Event names are free text from any sender: ASCII letters, digits and `_ . : $ - /` and
# inner spaces, starting with a letter, digit, `_` or `$` (PostHog's `$pageview`), at most
# MAX_EVENT_TYPE_LENGTH characters. Nothing else reaches storage, rollups or dashboards.
MAX_EVENT_TYPE_LENGTH = 64
_EVENT_TYPE = re.compile(r"[A-Za-z0-9_$](?:[A-Za-z0-9_.:$ /-]*[A-Za-z0-9_.:$/-])?")


# Names already seen valid (the platform sends a few dozen): a set lookup instead of the
# regex per event, on the ingest hot path. Bounded, since names are free text.
_VALID_EVENT_TYPES: set[str] = set()


def _event_type(value: str) -> str:
    if value in _VALID_EVENT_TYPES:
        return value
    if not _EVENT_TYPE.fullmatch(value):
        raise ValueError(
            "an event type is ASCII letters, digits, spaces and _ . : $ - / (starting with a"
            " letter, digit, _ or $; no space at either end)"
        )
    if len(_VALID_EVENT_TYPES) < 4096:
        _VALID_EVENT_TYPES.add(value)
    return value


EventType = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_EVENT_TYPE_LENGTH),
    AfterValidator(_event_type),
]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Url = Annotated[str, StringConstraints(max_length=4096)]

EARLIEST_EVENT_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME = datetime(2200, 1, 1, tzinfo=UTC)


def _plausible_time(value: datetime) -> datetime:
    """A client time in UTC (naive means UTC), refused outside [1970, 2200): PostgreSQL
    would store a time before year 1 UTC that cannot be read back into Python, and the
    clock-error correction (a difference of two client times) must stay in datetime's range."""
    try:
        at = (value.replace(tzinfo=UTC) if value.tzinfo is None else value).astimezone(UTC)
    except OverflowError:
        at = None
    if at is None or not EARLIEST_EVENT_TIME <= at < LATEST_EVENT_TIME:
        raise ValueError("must be a time from 1970 to 2199 (UTC)")
    return at


# Every time a client sends (event timestamps, Segment `sentAt`, PostHog `sent_at`).
ClientTime = Annotated[datetime, AfterValidator(_plausible_time)]


class EventRow(NamedTuple):
    """One event as staged for COPY (this order is the staging table's column order). The
    last three fields are staged but not stored: who the message id is unique for, and
    whether the event proved its ids (then a linked id gives it the linked user)."""

    message_id: str
    user_id: uuid.UUID | None
    anonymous_id: str | None
    session_id: str | None
    event_type: str
    page_url: str | None
    properties: str  # JSON text
    source: str
    created_at: datetime
    claimed_user_id: uuid.UUID | None = None  # a browser key's unproven user id
    sender: bytes = b""  # dedup scope: message ids are unique per sender (dedup_sender)
    proves_anonymous: bool = False
    proves_session: bool = False


@functools.lru_cache(maxsize=65536)
def dedup_sender(*parts: str | bytes | None) -> bytes:
    """The dedup scope of an event: a short hash of who sent it (a user, a write key, an
    anonymous visitor), so one sender's message id never hides another sender's event.
    Hashed: the scope table must not hold user ids or anonymous ids in clear. Cached: a
    sender sends many events (the hash per event was ~2.5 % of an ingest worker)."""
    h = hashlib.blake2b(digest_size=16, person=b"mysetlist-dedup")
    for part in parts:
        h.update(part if isinstance(part, bytes) else (part or "").encode())
        h.update(b"\x1f")
    return h.digest()


KeyTrust = Literal["browser", "server"]


class IdentityLink(NamedTuple):
    """An anonymous or session id proven to belong to `user_id`: the writer records it (the
    first link wins) and gives the id's earlier anonymous events to the user."""

    kind: IdKind
    id: str
    user_id: uuid.UUID


class Ingest(NamedTuple):
    """A request's events and the identity links they prove."""

    rows: list[EventRow]
    links: list[IdentityLink]


class ResolvedId(NamedTuple):
    """An event's anonymous or session id as stored, and whether the event proved it."""

    value: str | None
    proven: bool


_NO_ID = ResolvedId(None, False)


def resolve_id(
    kind: IdKind, raw: str | None, *, signed: SignedIds, trusted: bool, now: float
) -> ResolvedId:
    """A server-signed token is stored as the stable id it carries, proven while valid; any
    other id is stored as sent, proven only when the sender is trusted (a server key).
    Raises ValueError for a revoked token, and for a bare stable id (its token left off): a
    client only ever holds tokens, and accepting the bare id would let a copy of it pass as
    the real visitor."""
    if raw is None:
        return _NO_ID
    if not raw.startswith(PREFIX[kind]):
        # Neither a token nor a bare issued id (both carry the prefix): the common case of
        # a client's own ids, answered without the verification and shape checks.
        return ResolvedId(raw, trusted)
    verified = signed.verify(kind, raw)
    if verified is not None:
        if signed.is_revoked(verified.id):
            raise ValueError(
                "this id was revoked (its user's data was erased): request a new one from"
                " POST /api/analytics/anonymous-id"
            )
        return ResolvedId(verified.id, trusted or verified.valid(now))
    if not trusted and signed.looks_issued(kind, raw):
        raise ValueError("a server-issued id must be sent as the token it was issued as")
    return ResolvedId(raw, trusted)


def _links(
    user: uuid.UUID | None, anonymous: ResolvedId, session: ResolvedId
) -> list[IdentityLink]:
    """Links from `user` to the event's proven ids (a valid signed token, or any id from a
    sender trusted to merge identities)."""
    if user is None:
        return []
    ids: tuple[tuple[IdKind, ResolvedId], ...] = (("anonymous", anonymous), ("session", session))
    return [
        IdentityLink(kind, rid.value, user)
        for kind, rid in ids
        if rid.value is not None and rid.proven
    ]


def _unproven_id_error(index: int, field: str, exc: ValueError) -> dict[str, Any]:
    return {"index": index, "field": field, "message": str(exc)}


class InvalidEvents(Exception):
    """Some events are invalid: nothing of the request is written."""

    def __init__(self, status: int, title: str, detail: str, errors: list[dict[str, Any]]):
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors


# -- our endpoint -----------------------------------------------------------------------------


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


class PostHogEvent(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    event: EventType
    distinct_id: Identifier | int | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    timestamp: ClientTime | None = None
    offset: Annotated[int, Field(ge=0, le=7 * 24 * 3600 * 1000)] | None = None  # ms
    uuid: Identifier | None = None


_track_list = TypeAdapter(list[TrackEvent])
M = TypeVar("M", bound=BaseModel)

_segment_list = TypeAdapter(list[SegmentMessage])
_posthog_list = TypeAdapter(list[PostHogEvent])


def _errors(exc: ValidationError, *, batch: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        index = loc.pop(0) if batch and loc and isinstance(loc[0], int) else 0
        # pydantic names union members in the location; keep only the field path.
        union_members = ("str", "int", "constrained")
        field = ".".join(str(p) for p in loc if not str(p).startswith(union_members))
        out.append({"index": index, "field": field or "event", "message": err.get("msg", "")})
    return out


def _utc(ts: datetime | None, default: datetime) -> datetime:
    if ts is None:
        return default
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts


def _client_time(ts: datetime | None, sent_at: datetime | None, received_at: datetime) -> datetime:
    """The event's time with the sender's clock error removed, as Segment and PostHog do:
    a device whose clock is off stamps both `timestamp` and `sentAt` with the same error, so
    `timestamp + (received_at - sentAt)` is the event's time on our clock (network latency
    aside). Without `sentAt` the timestamp is taken as given."""
    at = _utc(ts, received_at)
    if ts is None or sent_at is None:
        return at
    return at + (received_at - _utc(sent_at, received_at))


_sent_at = TypeAdapter(ClientTime)


def _batch_sent_at(payload: dict[str, Any], key: str) -> datetime | None:
    """The batch-level send time (`sentAt` for Segment, `sent_at` for PostHog), or 400."""
    raw = payload.get(key)
    if raw is None:
        return None
    try:
        return _sent_at.validate_python(raw)
    except ValidationError:
        raise InvalidEvents(
            400, "Bad Request", f"{key} is not a timestamp",
            [{"index": 0, "field": key, "message": "expected an ISO 8601 timestamp"}],
        ) from None  # fmt: skip


def _as_uuid(value: object) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _json(value: dict[str, Any]) -> str:
    return orjson.dumps(value).decode()


def _too_big(index: int, size: int) -> dict[str, Any]:
    return {
        "index": index,
        "field": "event",
        "message": f"event is {size} bytes; the limit is {MAX_EVENT_BYTES}",
    }


def _validate_sized(adapter: TypeAdapter[list[M]], items: list[Any]) -> list[M]:
    """Ecosystem batches: every event within the per-event size limit, then all valid —
    or a 400 listing each offending index, and nothing stored."""
    too_big = [
        _too_big(i, size)
        for i, item in enumerate(items)
        if (size := len(orjson.dumps(item))) > MAX_EVENT_BYTES
    ]
    if too_big:
        raise InvalidEvents(
            400, "Bad Request", "some events are too large; none were stored", too_big
        )
    try:
        return adapter.validate_python(items)
    except ValidationError as exc:
        raise InvalidEvents(
            400, "Bad Request", "some events are invalid; none were stored",
            _errors(exc, batch=True),
        ) from None  # fmt: skip


def _check_nul(body: bytes) -> None:
    # PostgreSQL text and jsonb cannot hold U+0000.
    if b"\\u0000" in body:
        raise InvalidEvents(
            400, "Bad Request", "U+0000 (NUL) characters cannot be stored",
            [{"index": 0, "field": "body", "message": "contains \\u0000"}],
        )  # fmt: skip


def _too_deep() -> InvalidEvents:
    return InvalidEvents(
        400, "Bad Request", f"JSON nesting is deeper than the limit of {MAX_JSON_DEPTH} levels",
        [{"index": 0, "field": "body",
          "message": f"objects and arrays nest at most {MAX_JSON_DEPTH} deep"}],
    )  # fmt: skip


def _check_depth(payload: Any) -> None:
    """400 when objects/arrays nest deeper than MAX_JSON_DEPTH (walked level by level, so
    the check itself cannot recurse)."""
    level: list[Any] = [payload] if isinstance(payload, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, (dict, list))
        ]


def parse_json(body: bytes) -> Any:
    if not body:
        raise InvalidEvents(400, "Bad Request", "the request body is empty", [])
    _check_nul(body)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit"):  # orjson's own limit (1024): same answer
            raise _too_deep() from None
        raise InvalidEvents(400, "Bad Request", f"malformed JSON: {exc}", []) from None
    _check_depth(payload)
    return payload


# -- our endpoint: body -> rows -------------------------------------------------------------------


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
            422, "Unprocessable Content", "the body must be a JSON object",
            [{"index": 0, "field": "body", "message": "expected an object"}],
        )  # fmt: skip
    batch = "events" in payload
    if batch:
        extra = sorted(set(payload) - {"events"})
        if extra:
            raise InvalidEvents(
                422, "Unprocessable Content", "unknown field in the batch envelope",
                [{"index": 0, "field": k, "message": "Extra inputs are not permitted"}
                 for k in extra],
            )  # fmt: skip
        items = payload["events"]
        if not isinstance(items, list):
            raise InvalidEvents(
                422, "Unprocessable Content", "events must be an array",
                [{"index": 0, "field": "events", "message": "expected an array"}],
            )  # fmt: skip
        if not items:
            raise InvalidEvents(400, "Bad Request", "the batch is empty", [])
        if len(items) > max_batch:
            raise InvalidEvents(
                413, "Content Too Large",
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
        raise InvalidEvents(403, "Forbidden", "user_id in the body is not accepted", forged)
    try:
        events = _track_list.validate_python(items)
    except ValidationError as exc:
        raise InvalidEvents(
            422, "Unprocessable Content", "some events are invalid; none were stored",
            _errors(exc, batch=True),
        ) from None  # fmt: skip
    uid = uuid.UUID(user_id) if user_id else None
    now = received_at.timestamp()
    rows: list[EventRow] = []
    links: list[IdentityLink] = []
    errors: list[dict[str, Any]] = []
    user_sender = dedup_sender("user", str(uid)) if uid is not None else None
    for i, ev in enumerate(events):
        props = _json(ev.event_data)
        if len(props) > MAX_EVENT_BYTES:
            errors.append(_too_big(i, len(props)))
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
            errors.append(_unproven_id_error(i, "anonymous_id", exc))
            continue
        try:
            session = resolve_id("session", ev.session_id, signed=signed, trusted=False, now=now)
        except ValueError as exc:
            errors.append(_unproven_id_error(i, "session_id", exc))
            continue
        # Message ids are unique per sender: the token's user, else the anonymous visitor.
        sender = (
            user_sender
            if user_sender is not None
            else dedup_sender("anonymous", anonymous.value or session.value)
        )
        rows.append(
            EventRow(
                ev.message_id or uuid.uuid4().hex, uid, anonymous.value, session.value,
                ev.event_type, ev.page_url, props, "api", _utc(ev.timestamp, received_at),
                None, sender, anonymous.proven, session.proven,
            )
        )  # fmt: skip
        links += _links(uid, anonymous, session)
    if errors:
        raise InvalidEvents(
            422, "Unprocessable Content", "some events are invalid; none were stored", errors
        )
    return Ingest(rows, links)


# -- Segment and PostHog: shared identity rules ------------------------------------------------


def _ecosystem_ids(
    anonymous: str | None, session: str | None, *, signed: SignedIds, trust: KeyTrust, now: float
) -> tuple[ResolvedId, ResolvedId]:
    trusted = trust == "server"
    return (
        resolve_id("anonymous", anonymous, signed=signed, trusted=trusted, now=now),
        resolve_id("session", session, signed=signed, trusted=trusted, now=now),
    )


def _claim_or_user(
    user: uuid.UUID | None, ids: tuple[ResolvedId, ResolvedId], *, trust: KeyTrust
) -> tuple[uuid.UUID | None, uuid.UUID | None, str | None]:
    """(user, claimed user, stored anonymous id). A browser key's user id is anyone's to
    write: a claim (`claimed_user_id`) on an anonymous event, which links nothing (not even
    a signed id: that proves the visitor, not the user). Without an anonymous id the claim's
    uuid stands in as the event's anonymous id, as the SDKs' own fallback does."""
    if trust == "server" or user is None:
        return user, None, ids[0].value
    return None, user, ids[0].value or str(user)


def _ecosystem_sender(
    key_scope: bytes,
    trust: KeyTrust,
    user: uuid.UUID | None,
    claimed: uuid.UUID | None,
    anonymous: str | None,
    session: ResolvedId,
) -> bytes:
    """A server key is one sender; a browser key is public, so each of its visitors is a
    sender of its own (the user it names, else its anonymous or session id: what a retry
    repeats)."""
    if trust == "server":
        return dedup_sender("key", key_scope)
    return dedup_sender("key", key_scope, str(user or claimed or anonymous or session.value))


class EcosystemIdentity(NamedTuple):
    """Who a Segment or PostHog event is from, by the one identity rule of both formats."""

    user: uuid.UUID | None
    claimed: uuid.UUID | None
    anonymous: str | None  # as stored
    session: str | None
    sender: bytes
    proves_anonymous: bool
    proves_session: bool
    links: list[IdentityLink]


def _ecosystem_identity(
    user: uuid.UUID | None,
    anonymous: str | None,
    raw_session: object,
    *,
    key_scope: bytes,
    signed: SignedIds,
    trust: KeyTrust,
    now: float,
) -> EcosystemIdentity:
    """The ids resolved (ValueError for a revoked token or a bare issued id), a browser
    key's user turned into a claim, the dedup sender, and the links a server key proves."""
    ids = _ecosystem_ids(
        anonymous, str(raw_session) if raw_session is not None else None,
        signed=signed, trust=trust, now=now,
    )  # fmt: skip
    user, claimed, stored = _claim_or_user(user, ids, trust=trust)
    return EcosystemIdentity(
        user, claimed, stored, ids[1].value,
        _ecosystem_sender(key_scope, trust, user, claimed, stored, ids[1]),
        ids[0].proven, ids[1].proven,
        _links(user, *ids) if trust == "server" else [],
    )  # fmt: skip


# -- Segment ------------------------------------------------------------------------------------

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
        raise InvalidEvents(400, "Bad Request", "the body must be a JSON object", [])
    if kind is None:
        if body_size > MAX_SEGMENT_BATCH_BYTES:
            raise InvalidEvents(
                400, "Bad Request",
                f"batch is {body_size} bytes; the limit is {MAX_SEGMENT_BATCH_BYTES}", [],
            )  # fmt: skip
        items = payload.get("batch")
        if not isinstance(items, list) or not items:
            raise InvalidEvents(
                400, "Bad Request", "batch must be a non-empty array",
                [{"index": 0, "field": "batch", "message": "expected a non-empty array"}],
            )  # fmt: skip
        shared_context = payload.get("context") if isinstance(payload.get("context"), dict) else {}
        batch_sent_at = _batch_sent_at(payload, "sentAt")
    else:
        items = [{"type": kind, **payload}]
        shared_context = {}
        batch_sent_at = None  # a single call carries sentAt on the message itself
    cleaned = [
        {k: v for k, v in item.items() if k != "writeKey"} if isinstance(item, dict) else item
        for item in items
    ]
    messages = _validate_sized(_segment_list, cleaned)
    now = received_at.timestamp()
    errors: list[dict[str, Any]] = []
    rows: list[EventRow] = []
    links: list[IdentityLink] = []
    for i, msg in enumerate(messages):
        if msg.type == "track" and not msg.event:
            errors.append({"index": i, "field": "event", "message": "track needs an event name"})
            continue
        if msg.userId is None and msg.anonymousId is None:
            errors.append(
                {"index": i, "field": "userId", "message": "userId or anonymousId is required"}
            )
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
        user = _as_uuid(msg.userId)
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
        try:
            who = _ecosystem_identity(
                user, anonymous, props.get("session_id") or context.get("sessionId"),
                key_scope=key_scope, signed=signed, trust=trust, now=now,
            )  # fmt: skip
        except ValueError as exc:
            errors.append(_unproven_id_error(i, "anonymousId", exc))
            continue
        links += who.links
        event_type = msg.event if msg.type == "track" else _SEGMENT_TYPES[msg.type]
        rows.append(
            EventRow(
                msg.messageId or uuid.uuid4().hex, who.user, who.anonymous, who.session,
                str(event_type), str(page_url) if page_url is not None else None, _json(props),
                "segment", _client_time(msg.timestamp, msg.sentAt or batch_sent_at, received_at),
                who.claimed, who.sender, who.proves_anonymous, who.proves_session,
            )
        )  # fmt: skip
    if errors:
        raise InvalidEvents(400, "Bad Request", "some events are invalid; none were stored",
                            errors)  # fmt: skip
    return Ingest(rows, links)


# -- PostHog ------------------------------------------------------------------------------------


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
        sent_at = _batch_sent_at(payload, "sent_at")
    elif isinstance(payload, dict):
        items = [payload]
        sent_at = _batch_sent_at(payload, "sent_at")
    else:
        raise InvalidEvents(400, "Bad Request", "the body must be a JSON object or array", [])
    if not items:
        raise InvalidEvents(400, "Bad Request", "the batch is empty", [])
    events = _validate_sized(_posthog_list, items)
    now = received_at.timestamp()
    errors: list[dict[str, Any]] = []
    rows: list[EventRow] = []
    links: list[IdentityLink] = []
    for i, ev in enumerate(events):
        props = dict(ev.properties)
        props.pop("token", None)
        distinct = ev.distinct_id if ev.distinct_id is not None else props.get("distinct_id")
        if distinct is None:
            errors.append(
                {"index": i, "field": "distinct_id", "message": "distinct_id is required"}
            )
            continue
        distinct = str(distinct)
        # posthog-js gives anonymous visitors uuid (v7) distinct ids equal to their
        # $device_id and marks them `$is_identified: false`: those are not platform users.
        browser_anonymous = props.get("$is_identified") is False or (
            props.get("$device_id") == distinct and ev.event != "$identify"
        )
        user = None if browser_anonymous else _as_uuid(distinct)
        anonymous = None if user is not None else distinct
        if ev.event == "$identify" and props.get("$anon_distinct_id"):
            anonymous = str(props["$anon_distinct_id"])
        if ev.event == "$create_alias" and (target := _as_uuid(props.get("alias"))):
            # alias(previous_id, distinct_id) arrives as distinct_id = the previous id and
            # properties.alias = the new one: when that is a platform user, link the two
            user, anonymous = target, distinct
        try:
            who = _ecosystem_identity(
                user, anonymous, props.get("$session_id"),
                key_scope=key_scope, signed=signed, trust=trust, now=now,
            )  # fmt: skip
        except ValueError as exc:
            errors.append(_unproven_id_error(i, "distinct_id", exc))
            continue
        links += who.links
        page_url = props.get("$current_url")
        if ev.timestamp is None and ev.offset is not None:
            # posthog-js without a timestamp: the event happened `offset` ms before sending
            at = received_at - timedelta(milliseconds=ev.offset)
        else:
            ignore_sent_at = props.get("$ignore_sent_at") in (True, "1", "true")
            at = _client_time(ev.timestamp, None if ignore_sent_at else sent_at, received_at)
        rows.append(
            EventRow(
                ev.uuid or uuid.uuid4().hex, who.user, who.anonymous, who.session, ev.event,
                str(page_url) if page_url is not None else None, _json(props), "posthog", at,
                who.claimed, who.sender, who.proves_anonymous, who.proves_session,
            )
        )  # fmt: skip
    if errors:
        raise InvalidEvents(400, "Bad Request", "some events are invalid; none were stored",
                            errors)  # fmt: skip
    return Ingest(rows, links)
