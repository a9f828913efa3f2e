"""Hypothesis on the validators at the trust boundary (events, preferences, templates):
whatever the input, a valid result or the validator's own 4xx error, never a crash (which
the API would turn into a 500)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mysetlist.core.errors import DomainError, status_of
from mysetlist.notify.config import load_notify_settings
from mysetlist.notify.preferences.api_models import PreferencesUpdate
from mysetlist.notify.preferences.model import Preferences, apply_update, default_channels
from mysetlist.notify.templates.rendering import TemplateProblem, validate
from mysetlist.tracking.signed_ids import SignedIds
from mysetlist.tracking.wire.own import own_events

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
_EVENT_KEYS = ["event_type", "eventType", "type", "properties", "page_url", "anonymous_id",
               "session_id", "timestamp", "created_at", "message_id", "events"]  # fmt: skip
_event_like = st.dictionaries(st.sampled_from(_EVENT_KEYS), _json, max_size=6)
SIGNED = SignedIds(b"s" * 32)


@_SETTINGS
@given(
    payload=_json
    | _event_like
    | st.fixed_dictionaries({"events": st.lists(_event_like, max_size=5)})
)
def test_event_validation_never_crashes(payload: Any) -> None:
    status = 200
    try:
        own_events(
            payload, user_id=None, max_batch=100, received_at=datetime.now(UTC), signed=SIGNED
        )
    except DomainError as exc:
        status = status_of(exc)
    assert 200 <= status < 500


_PREF_KEYS = ["channels", "digest", "quietHours", "timezone", "muted", "other"]


@_SETTINGS
@given(body=_json | st.dictionaries(st.sampled_from(_PREF_KEYS), _json, max_size=5))
def test_preference_validation_never_crashes(body: Any) -> None:
    """The PUT body's model either refuses it (FastAPI answers that with a 422) or gives an
    update that merges without error."""
    current = Preferences(channels=default_channels(load_notify_settings()), digest={})
    try:
        update = PreferencesUpdate.model_validate(body)
    except ValidationError:
        return
    assert isinstance(apply_update(current, update), Preferences)


_template_text = st.lists(
    st.sampled_from([*"{}%#-_ ab()[].'\"\n|=", "{{", "}}", "{%", "%}", "artist_name", "x"]),
    max_size=30,
).map("".join)


@_SETTINGS
@given(subject=_template_text, html=_template_text, text=st.none() | _template_text)
def test_template_validation_never_crashes(subject: str, html: str, text: str | None) -> None:
    part = "ok"
    try:
        validate(subject, html, text, ["artist_name"])
    except TemplateProblem as exc:
        part = exc.part
    assert part in ("ok", "subject", "html", "text")
