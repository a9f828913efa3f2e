"""Attack family: odd input to the notify routes answered with a 5xx (issue 15, item 11).

Each must be a 4xx problem document that writes nothing: ids beyond bigint, an erased
user's unsubscribe link, SNS messages with a non-string Type or a Timestamp without a
zone, and U+0000 in templates, locales, titles and data (PostgreSQL text and jsonb cannot
hold it). Templates failing at render are in test_template_limits.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from mysetlist.notify.signed_links import SignedLinks
from mysetlist.notify.webhooks.routes import WebhookVerifiers
from mysetlist.notify.webhooks.signatures import SnsVerifier
from tests.conftest import serve_app
from tests.notify import conftest as notify_fixtures
from tests.notify.test_webhooks import TOPIC, Keys, sns_message
from tests.security.notify_support import service_headers

pytestmark = pytest.mark.db
make_users = notify_fixtures.make_users


def _problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_ids_beyond_bigint_are_a_422(api_url: str, token_for: Any, make_users: Any) -> None:
    (fan,) = await make_users(1)
    async with httpx.AsyncClient(base_url=api_url) as c:
        as_fan = {"Authorization": f"Bearer {token_for(fan.id)}"}
        _problem(await c.get("/api/notifications?before=99999999999999999999", headers=as_fan),
                 422)  # fmt: skip
        as_service = service_headers(token_for)
        for query in ("before=36893488147419103232", "requestId=36893488147419103232"):
            _problem(await c.get(f"/api/notifications/send?{query}", headers=as_service), 422)
        # the largest bigint is fine
        ok = await c.get(f"/api/notifications/send?before={2**63 - 1}", headers=as_service)
        assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("erasure", ["row deleted", "marked deleted"])
async def test_an_erased_users_unsubscribe_link_is_a_404_and_writes_nothing(
    erasure: str, api_url: str, make_users: Any, runtime: Runtime
) -> None:
    (fan,) = await make_users(1)
    token = SignedLinks(runtime.settings.effective_encryption_key).unsubscribe_token(
        fan.id, "marketing"
    )
    if erasure == "row deleted":
        await runtime.db.fetch_one("DELETE FROM app.users WHERE id = %s RETURNING id", (fan.id,))
    else:
        await runtime.db.fetch_one(
            "UPDATE app.users SET deleted_at = now() WHERE id = %s RETURNING id", (fan.id,)
        )
    async with httpx.AsyncClient(base_url=api_url) as c:
        for form in ({"List-Unsubscribe": "One-Click"}, {"action": "save", "email": "new_shows"}):
            _problem(await c.post(f"/u/{token}", data=form), 404)
        _problem(await c.get(f"/u/{token}"), 404)
    row = await runtime.db.fetch_one(
        "SELECT count(*) AS n FROM notify.user_notification_preferences WHERE user_id = %s",
        (fan.id,),
    )
    assert row == {"n": 0}


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def ses_api(settings: Settings, database_url: str, redis_url: str, keys: Keys) -> Iterator[str]:
    """An API whose SNS verifier holds the test's certificate and topic."""
    from mysetlist.api import create_app

    app = create_app(settings, database_url, redis_url, with_worker=False)
    app.state.notify_webhooks = WebhookVerifiers(
        None, SnsVerifier(["sns.us-east-1.amazonaws.com"], [TOPIC], keys.fetch), keys.fetch
    )
    with serve_app(app) as url:
        yield url


async def test_sns_messages_of_the_wrong_shape_are_a_400(ses_api: str, keys: Keys) -> None:
    # Signed correctly: only the zone of the Timestamp is missing.
    zoneless = sns_message(
        keys.sns, "Notification", "{}",
        Timestamp=datetime.now(UTC).replace(tzinfo=None).isoformat(),
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=ses_api) as c:
        bodies: tuple[object, ...] = ({"Type": []}, {"Type": {}}, {"Type": None}, [], zoneless)
        for body in bodies:
            r = await c.post("/api/webhooks/ses", content=orjson.dumps(body),
                             headers={"Content-Type": "text/plain"})  # fmt: skip
            _problem(r, 400)


def _send_body(user_id: str, **changes: Any) -> dict[str, Any]:
    return {"userId": user_id, "type": "account_notice", "title": "t", "message": "m",
            "channels": ["in_app"], **changes}  # fmt: skip


async def test_nul_in_titles_data_templates_and_locales_is_a_422_and_writes_nothing(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime
) -> None:
    (fan,) = await make_users(1)
    nul = "\u0000"
    operator = {"Authorization": f"Bearer {token_for(uuid.uuid4(), admin=True)}"}
    async with httpx.AsyncClient(base_url=api_url) as c:
        for changes in (
            {"title": f"a{nul}b"}, {"message": nul}, {"data": {"k": f"v{nul}"}},
            {"data": {f"k{nul}": 1}}, {"data": {"list": [{"deep": nul}]}},
            {"variables": {"v": nul}}, {"template": f"generic{nul}"},
            {"dedupKey": f"k{nul}"},
        ):  # fmt: skip
            r = await c.post("/api/notifications/send", json=_send_body(fan.id, **changes),
                             headers=service_headers(token_for))  # fmt: skip
            _problem(r, 422)
        template = {"name": f"nul_{uuid.uuid4().hex[:8]}", "category": "marketing",
                    "subject": "Hi", "html": "<p>x</p>", "variables": []}  # fmt: skip
        for changes in ({"html": f"<p>{nul}</p>"}, {"subject": f"H{nul}"},
                        {"text": nul}, {"locale": f"e{nul}"}):  # fmt: skip
            r = await c.post("/api/notifications/templates", json={**template, **changes},
                             headers=operator)  # fmt: skip
            _problem(r, 422)
        for preview in ({"name": "welcome", "locale": f"e{nul}"}, {"name": f"w{nul}"},
                        {"name": "welcome", "variables": {"user_name": nul}}):  # fmt: skip
            r = await c.post("/api/notifications/templates/preview", json=preview,
                             headers=operator)  # fmt: skip
            _problem(r, 422)
        _problem(await c.get("/api/notifications/templates/welcome?locale=%00",
                             headers=operator), 422)  # fmt: skip
    row = await runtime.db.fetch_one(
        "SELECT count(*) AS n FROM notify.notifications WHERE user_id = %s", (fan.id,)
    )
    assert row == {"n": 0}


async def test_integers_past_64_bits_in_data_are_a_422_and_write_nothing(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime
) -> None:
    """JSON parsed by the standard library keeps 2^80 as an int; orjson then could not
    write it (a 500 at the send, and every later read of the row). 2^63 - 1 still goes."""
    (fan,) = await make_users(1)
    async with httpx.AsyncClient(base_url=api_url) as c:
        for changes in (
            {"data": {"n": 2**80}}, {"data": {"list": [{"deep": -(2**63) - 1}]}},
            {"variables": {"v": 2**64}},
        ):  # fmt: skip
            r = await c.post("/api/notifications/send", json=_send_body(fan.id, **changes),
                             headers=service_headers(token_for))  # fmt: skip
            _problem(r, 422)
        row = await runtime.db.fetch_one(
            "SELECT count(*) AS n FROM notify.notifications WHERE user_id = %s", (fan.id,)
        )
        assert row == {"n": 0}
        r = await c.post("/api/notifications/send",
                         json=_send_body(fan.id, data={"n": 2**63 - 1, "m": -(2**63)}),
                         headers=service_headers(token_for))  # fmt: skip
        assert r.status_code == 202, r.text
