"""The spec's own usage examples (seed/analytics-notification-system.md, "Usage Examples"),
sent exactly as printed: only the placeholders (`user.id`, `sessionId`,
`window.location.href`, `document.referrer`) become real values. Each must get a 2xx: the
spec is what a fan app's developer reads first.

Beside them, the calls the fan app makes that the spec names without a body: reading the
caller's preferences (and writing back what it read), similar fans, and a show's predicted
setlist."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from mysetlist.core.db import fetch_one_in
from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery.drain import Deliverer
from tests.notify.conftest import SmtpSink

pytestmark = pytest.mark.db


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _upcoming_show(runtime: Runtime) -> int:
    """A show tonight, of an artist with one played setlist to learn from."""
    async with runtime.db.transaction() as conn:
        artist = await fetch_one_in(
            conn, "INSERT INTO app.artists (name) VALUES (%s) RETURNING id",
            (f"Arctic Monkeys {uuid.uuid4().hex[:6]}",),
        )  # fmt: skip
        venue = await fetch_one_in(
            conn, "INSERT INTO app.venues (name, city, country) VALUES ('Arena', 'Sheffield',"
            " 'GB') RETURNING id",
        )  # fmt: skip
        assert artist is not None
        assert venue is not None
        song = await fetch_one_in(
            conn, "INSERT INTO app.songs (artist_id, title) VALUES (%s, 'Do I Wanna Know?')"
            " RETURNING id", (artist["id"],),
        )  # fmt: skip
        played = await fetch_one_in(
            conn, "INSERT INTO app.shows (artist_id, venue_id, starts_at, status)"
            " VALUES (%s, %s, now() - interval '3 days', 'completed') RETURNING id",
            (artist["id"], venue["id"]),
        )  # fmt: skip
        assert song is not None
        assert played is not None
        await conn.execute(
            "INSERT INTO app.setlist_songs (show_id, position, song_id) VALUES (%s, 1, %s)",
            (played["id"], song["id"]),
        )
        show = await fetch_one_in(
            conn, "INSERT INTO app.shows (artist_id, venue_id, starts_at)"
            " VALUES (%s, %s, now() + interval '8 hours') RETURNING id",
            (artist["id"], venue["id"]),
        )  # fmt: skip
    assert show is not None
    return int(show["id"])


async def test_track_user_event_as_printed(api_url: str, token_for: Any, make_users: Any) -> None:
    (user,) = await make_users(1)
    async with httpx.AsyncClient(base_url=api_url) as c:
        ids = await c.post("/api/analytics/anonymous-id")
        assert ids.status_code == 200, ids.text
        session_id = ids.json()["session_id"]
        body = {
            "event_type": "page_view",
            "session_id": session_id,
            "page_url": "https://mysetlist.example/artists/arctic-monkeys",
            "event_data": {"referrer": "https://www.google.com/"},
        }
        # The fan app sends it signed in, and before sign-in with no Authorization at all.
        signed_in = await c.post(
            "/api/analytics/events", json=body, headers=_bearer(token_for(user.id))
        )
        anonymous = await c.post("/api/analytics/events", json=body)
    assert signed_in.status_code == 202, signed_in.text
    assert anonymous.status_code == 202, anonymous.text
    assert signed_in.json() == {"accepted": 1}


async def test_send_notification_as_printed_renders_title_and_message(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    """No template and no variables: the title and message are the notification, rendered
    through the generic layout (the show_reminder template needs artist_name and
    reminder_text, which the example does not give)."""
    (user,) = await make_users(1)
    body = {
        "userId": user.id,
        "type": "show_reminder",
        "title": "Show Reminder",
        "message": "Arctic Monkeys is performing tonight!",
        "data": {"showId": "show-123"},
    }
    service = _bearer(token_for(uuid.uuid4(), role="service_role"))
    async with httpx.AsyncClient(base_url=api_url, headers=service) as c:
        r = await c.post("/api/notifications/send", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["notifications"] == 1
    row = await runtime.db.fetch_one(
        "SELECT template_name FROM notify.notifications WHERE request_id = %s",
        (r.json()["requestId"],),
    )
    assert row is not None
    assert row["template_name"] == "generic"
    # No push subscription and a verified email: of email and in-app, a show reminder (one
    # channel, the one this fan engages with most; no history: the first) goes by email.
    await deliverer.drain(runtime.db)
    (message,) = smtp_sink.to(user.email)
    assert message["Subject"] == "Show Reminder"
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    assert html is not None
    assert text is not None
    assert "Arctic Monkeys is performing tonight!" in html.get_content()
    assert "Arctic Monkeys is performing tonight!" in text.get_content()


async def test_named_template_still_needs_its_variables(
    api_url: str, token_for: Any, make_users: Any
) -> None:
    (user,) = await make_users(1)
    body = {
        "userId": user.id, "type": "show_reminder", "title": "Show Reminder",
        "message": "Arctic Monkeys is performing tonight!", "template": "show_reminder",
    }  # fmt: skip
    service = _bearer(token_for(uuid.uuid4(), role="service_role"))
    async with httpx.AsyncClient(base_url=api_url, headers=service) as c:
        r = await c.post("/api/notifications/send", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "variables.artist_name"


async def test_recommendations_as_printed(api_url: str, token_for: Any, make_users: Any) -> None:
    (user,) = await make_users(1)
    async with httpx.AsyncClient(base_url=api_url, headers=_bearer(token_for(user.id))) as c:
        r = await c.get("/api/analytics/recommendations?type=artists&limit=10")
        similar = await c.post("/api/analytics/recommendations", json={"limit": 10})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["recommendations"], list)  # `const { recommendations } = ...`
    assert similar.status_code == 200, similar.text


async def test_preferences_read_and_written_back(
    api_url: str, token_for: Any, make_users: Any
) -> None:
    (user,) = await make_users(1)
    async with httpx.AsyncClient(base_url=api_url, headers=_bearer(token_for(user.id))) as c:
        read = await c.get("/api/notifications/preferences")
        assert read.status_code == 200, read.text
        editable = {k: v for k, v in read.json().items() if k != "transactionalCategories"}
        written = await c.put("/api/notifications/preferences", json=editable)
    assert written.status_code == 200, written.text
    assert written.json() == read.json()


async def test_predicted_setlist(api_url: str, runtime: Runtime) -> None:
    show = await _upcoming_show(runtime)
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.get(f"/api/shows/{show}/predicted-setlist")
    assert r.status_code == 200, r.text
