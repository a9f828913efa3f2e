"""What every wire format checks the same way: the body (JSON, nesting, NUL), the limits,
event types, ids and client times, and how a refused batch names each offending event.

Validation is pydantic v2. Our own endpoint is strict (`extra="forbid"`: an unknown field is
a 422 naming it); the Segment and PostHog shapes are lenient about extra fields (their
clients send `context`, `integrations`, `$lib` …) but strict about the ones we store.

Times: the client's `timestamp`, corrected for the sender's clock error when the batch says
when it was sent (Segment `sentAt`, PostHog `sent_at`; PostHog `offset` without a
timestamp); without a timestamp, the time we received it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from mysetlist.tracking.errors import MalformedEvents

MAX_EVENT_BYTES = 32 * 1024  # Segment's per-event limit; we apply it everywhere
# Deepest nesting of objects and arrays in a request body (the body itself is level 1).
# Events are shallow; orjson cannot re-serialise beyond 254 levels, and walking unbounded
# depth anywhere would be an easy way to make a request expensive.
MAX_JSON_DEPTH = 32

# Event names are free text from any sender: ASCII letters, digits and `_ . : $ - /` and
# inner spaces, starting with a letter, digit, `_` or `$` (PostHog's `$pageview`), at most
# MAX_EVENT_TYPE_LENGTH characters. Nothing else reaches storage, rollups or dashboards.
MAX_EVENT_TYPE_LENGTH = 64
# Checked by pydantic-core's own regex engine (Rust), not a Python validator: this runs for
# every ingested event. ASCII only (no \w), no space at either end.
EVENT_TYPE_PATTERN = r"^[A-Za-z0-9_$](?:[A-Za-z0-9_.:$ /-]*[A-Za-z0-9_.:$/-])?$"
EVENT_TYPE_RULE = (
    "an event type is ASCII letters, digits, spaces and _ . : $ - / (starting with a"
    " letter, digit, _ or $; no space at either end)"
)

EventType = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_EVENT_TYPE_LENGTH, pattern=EVENT_TYPE_PATTERN),
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


M = TypeVar("M", bound=BaseModel)


def field_errors(exc: ValidationError, *, batch: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        index = loc.pop(0) if batch and loc and isinstance(loc[0], int) else 0
        # pydantic names union members in the location; keep only the field path.
        union_members = ("str", "int", "constrained")
        field = ".".join(str(p) for p in loc if not str(p).startswith(union_members))
        message = err.get("msg", "")
        if err.get("type") == "string_pattern_mismatch":  # only event types have a pattern
            message = EVENT_TYPE_RULE
        out.append({"index": index, "field": field or "event", "message": message})
    return out


def as_utc(ts: datetime | None, default: datetime) -> datetime:
    if ts is None:
        return default
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts


def client_time(ts: datetime | None, sent_at: datetime | None, received_at: datetime) -> datetime:
    """The event's time with the sender's clock error removed, as Segment and PostHog do:
    a device whose clock is off stamps both `timestamp` and `sentAt` with the same error, so
    `timestamp + (received_at - sentAt)` is the event's time on our clock (network latency
    aside). Without `sentAt` the timestamp is taken as given."""
    at = as_utc(ts, received_at)
    if ts is None or sent_at is None:
        return at
    return at + (received_at - as_utc(sent_at, received_at))


_sent_at = TypeAdapter(ClientTime)


def read_sent_at(payload: dict[str, Any], key: str) -> datetime | None:
    """The batch-level send time (`sentAt` for Segment, `sent_at` for PostHog), or 400."""
    raw = payload.get(key)
    if raw is None:
        return None
    try:
        return _sent_at.validate_python(raw)
    except ValidationError:
        raise MalformedEvents(
            f"{key} is not a timestamp",
            [{"index": 0, "field": key, "message": "expected an ISO 8601 timestamp"}],
        ) from None


def as_uuid(value: object) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def properties_json(value: dict[str, Any]) -> str:
    return orjson.dumps(value).decode()


def too_big_error(index: int, size: int) -> dict[str, Any]:
    return {
        "index": index,
        "field": "event",
        "message": f"event is {size} bytes; the limit is {MAX_EVENT_BYTES}",
    }


def validate_sized(adapter: TypeAdapter[list[M]], items: list[Any]) -> list[M]:
    """Ecosystem batches: every event within the per-event size limit, then all valid —
    or a 400 listing each offending index, and nothing stored."""
    too_big = [
        too_big_error(i, size)
        for i, item in enumerate(items)
        if (size := len(orjson.dumps(item))) > MAX_EVENT_BYTES
    ]
    if too_big:
        raise MalformedEvents("some events are too large; none were stored", too_big)
    try:
        return adapter.validate_python(items)
    except ValidationError as exc:
        raise MalformedEvents(
            "some events are invalid; none were stored", field_errors(exc, batch=True)
        ) from None


def _check_nul(body: bytes) -> None:
    # PostgreSQL text and jsonb cannot hold U+0000.
    if has_nul(body):
        raise MalformedEvents(
            "U+0000 (NUL) characters cannot be stored",
            [{"index": 0, "field": "body", "message": "contains \\u0000"}],
        )


def _too_deep() -> MalformedEvents:
    return MalformedEvents(
        f"JSON nesting is deeper than the limit of {MAX_JSON_DEPTH} levels",
        [{"index": 0, "field": "body",
          "message": f"objects and arrays nest at most {MAX_JSON_DEPTH} deep"}],
    )  # fmt: skip


def _check_depth(payload: Any, *, above: int = 0) -> None:
    """400 when objects/arrays nest deeper than MAX_JSON_DEPTH (walked level by level, so
    the check itself cannot recurse); `above`: the levels that enclose `payload` in its
    body. `payload` is a JSON decoder's output: its containers are exactly dict and list,
    so `type(x) is` tests them (~2.5x cheaper per value than isinstance with a tuple, and
    this visits every value of every request)."""
    level: list[Any] = [payload] if type(payload) is dict or type(payload) is list else []
    depth = above
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        deeper: list[Any] = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is dict or type(child) is list:
                    deeper.append(child)
        level = deeper


def nesting_within_limit(value: Any, *, above: int) -> bool:
    """Whether `value`, enclosed by `above` levels of its body, nests within MAX_JSON_DEPTH."""
    try:
        _check_depth(value, above=above)
    except MalformedEvents:
        return False
    return True


def has_nul(body: bytes) -> bool:
    return b"\\u0000" in body


def parse_json(body: bytes) -> Any:
    if not body:
        raise MalformedEvents("the request body is empty", [])
    _check_nul(body)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit"):  # orjson's own limit (1024): same answer
            raise _too_deep() from None
        raise MalformedEvents(f"malformed JSON: {exc}", []) from None
    _check_depth(payload)
    return payload


def unproven_id_error(index: int, field: str, exc: ValueError) -> dict[str, Any]:
    return {"index": index, "field": field, "message": str(exc)}
