"""The ingest hot path's msgspec schema (`own_events_fast`) against the contract's pydantic
path (`own_events(parse_json(...))`): on any body, the fast path either declines (None, and
the pydantic path answers, errors included) or returns exactly the rows and links the
pydantic path returns. A fast path that accepted something the contract refuses, or read a
field differently, fails here; so does one that declines the common body (then it would
only cost time)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mysetlist.core.errors import DomainError
from mysetlist.tracking.events import EventRow, Ingest
from mysetlist.tracking.signed_ids import SignedIds
from mysetlist.tracking.wire.own import own_events, own_events_fast
from mysetlist.tracking.wire.validation import parse_json

SIGNED = SignedIds(b"s" * 32)
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
USER = "7b0f3f8e-2a51-4d55-9b1e-0c1d2e3f4a5b"
MAX_BATCH = 5


def _slow(body: bytes, user_id: str | None) -> Ingest | DomainError:
    try:
        return own_events(
            parse_json(body), user_id=user_id, max_batch=MAX_BATCH, received_at=NOW, signed=SIGNED
        )
    except DomainError as exc:
        return exc


def _fast(body: bytes, user_id: str | None) -> Ingest | None:
    return own_events_fast(
        body, user_id=user_id, max_batch=MAX_BATCH, received_at=NOW, signed=SIGNED
    )


def _generated_ids_equal(a: EventRow, b: EventRow) -> bool:
    """Rows equal, except a message id each path generated (uuid4 hex) for an event without one."""
    generated = len(a.message_id) == 32 and len(b.message_id) == 32
    return a == b or (generated and a._replace(message_id="") == b._replace(message_id=""))


def assert_same_answer(body: bytes, user_id: str | None = None) -> Ingest | None:
    fast = _fast(body, user_id)
    if fast is None:
        return None
    slow = _slow(body, user_id)
    assert isinstance(slow, Ingest), f"fast path accepted what the contract refuses: {slow!r}"
    assert len(fast.rows) == len(slow.rows)
    assert all(_generated_ids_equal(a, b) for a, b in zip(fast.rows, slow.rows, strict=True))
    assert fast.links == slow.links
    return fast


def _event(**fields: Any) -> dict[str, Any]:
    return {"event_type": "page_view", "anonymous_id": "anon-1", **fields}


def test_the_common_bodies_take_the_fast_path_with_the_same_rows() -> None:
    batch = orjson.dumps({"events": [
        _event(session_id="sess-1", page_url="https://x/1", event_data={"show_id": 1},
               message_id="m-1"),
        _event(event_type="$pageview", event_data={"nested": {"a": [1, 2.5, None, True]}}),
        _event(timestamp="2026-12-04T11:59:00Z", message_id="m-3"),
    ]})  # fmt: skip
    assert assert_same_answer(batch) is not None
    assert assert_same_answer(batch, USER) is not None
    assert assert_same_answer(orjson.dumps(_event(message_id="m-9"))) is not None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"events": []}',
        orjson.dumps({"events": [_event()] * (MAX_BATCH + 1)}),
        orjson.dumps({"events": [_event()], "extra": 1}),
        orjson.dumps(_event(user_id=USER)),
        orjson.dumps({"events": [_event(userId=USER)]}),
        orjson.dumps(_event(event_type="page_view\n")),  # $ before a final newline
        orjson.dumps(_event(event_type=" page_view")),
        orjson.dumps(_event(event_type="x" * 65)),
        orjson.dumps(_event(anonymous_id="")),
        orjson.dumps(_event(anonymous_id="a" * 201)),
        orjson.dumps(_event(page_url="u" * 4097)),
        orjson.dumps(_event(event_data=None)),
        orjson.dumps(_event(event_data=[1])),
        orjson.dumps(_event(event_data={"big": "x" * 40_000})),
        orjson.dumps({"event_type": "page_view"}),  # anonymous without an id
        orjson.dumps(_event(anonymous_id="a1.forged-token")),
        orjson.dumps(_event(event_data={"s": "nul \u0000"})),
        b'{"event_type": "x", "anonymous_id": "a", "event_data": {"n": 1234567890123456789012}}',
        b'{"event_type": "page_view", "anonymous_id": "a", "event_data": {"s": "\\ud800"}}',
        b'{"event_type": "page_view", "anonymous_id": "a", "event_data": {"s": "\\ud83d\\ude00"}}',
        b'{"event_type": "a", "event_type": "page_view", "anonymous_id": "a"}',
        b'{"event_type": "page_view", "anonymous_id": "a", "event_data": {"events": 1}}',
        b'{"event_type": "page_view", "anonymous_id": "a", "event_data": {"f": 1e400}}',
        b'{"event_type": "page_view", "anonymous_id": "a", "event_data": {"f": 0.1e-310}}',
        b'{"event_type": "page_view", "anonymous_id": "a",}',
        *(
            orjson.dumps(_event(timestamp=ts))
            for ts in [
                1764849600,
                1764849600.5,
                1764849600123,
                "2026-12-04",
                "2026-12-04T12:00:00",
                "2026-12-04T12:00:00.1234567+05:30",
                "1969-12-31T23:59:59Z",
                "2200-01-01T00:00:00Z",
                "2026-12-04T23:59:60Z",
                "not a time",
                True,
                None,
                {"t": 1},
                [1],
            ]
        ),
    ],
)
def test_edge_bodies_get_the_contracts_answer(body: bytes) -> None:
    assert_same_answer(body)
    assert_same_answer(body, USER)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize("depth", [27, 28, 29, 30, 31, 32])
def test_nesting_limit_is_the_same_on_both_paths(depth: int) -> None:
    for body in (
        orjson.dumps({"events": [_event(event_data=_nested(depth))]}),
        orjson.dumps(_event(event_data=_nested(depth))),
    ):
        fast = _fast(body, None)
        slow = _slow(body, None)
        assert isinstance(slow, Ingest) == (fast is not None), (depth, slow)
        assert_same_answer(body)


_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
_ids = st.none() | st.text(max_size=6) | st.sampled_from(["anon-1", "sess-2", "", "a1.x.y"])
_event_types = st.sampled_from(
    ["page_view", "$pageview", "a b", "x\n", "", " x", "vote"]
) | st.text(max_size=8)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "event_type": _event_types | _json,
        "anonymous_id": _ids,
        "session_id": _ids,
        "page_url": st.none() | st.text(max_size=10),
        "event_data": st.dictionaries(st.text(max_size=6), _json, max_size=3) | _json,
        "timestamp": st.none()
        | st.integers()
        | st.text(max_size=25)
        | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
        "message_id": _ids,
        "user_id": st.just(USER),
        "other": _json,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=_fields | st.fixed_dictionaries({"events": st.lists(_fields, max_size=7)}) | _json,
    signed_in=st.booleans(),
)
def test_generated_bodies_get_the_contracts_answer(payload: Any, signed_in: bool) -> None:
    try:
        body = orjson.dumps(payload)
    except TypeError:  # a string orjson cannot encode (lone surrogate): not a JSON body
        return
    assert_same_answer(body, USER if signed_in else None)
