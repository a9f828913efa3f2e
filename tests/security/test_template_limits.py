"""Attack family: templates that fail or run away at render (issue 15, items 11 and 12).

A nested `range` in a template preview held /healthz for 2.9 s; `{{ 1/0 }}`, range(10**7)
and include/import/extends were 500s. Now rendering runs off the event loop under a time
and size budget: each such template is a 422 at preview and at save (nothing stored), and
at send it fails its own delivery only."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.notify.templates.rendering import RENDER_SECONDS
from tests.notify import conftest as notify_fixtures
from tests.notify.conftest import SmtpSink
from tests.security.notify_support import delivery_rows, send

pytestmark = pytest.mark.db
smtp_sink = notify_fixtures.smtp_sink
make_users = notify_fixtures.make_users
deliverer = notify_fixtures.deliverer

NESTED_RANGE = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
FAILING = {
    "division by zero": "<p>{{ 1/0 }}</p>",
    "range too big": "{% for i in range(10**7) %}{% endfor %}",
    "include": '{% include "welcome" %}',
    "import": '{% import "welcome" as w %}',
    "from import": '{% from "welcome" import x %}',
    "extends": '{% extends "welcome" %}',
    "repetition": '{{ "x" * 2000000 }}',
    "power": "{{ 10 ** 100000 }}",
    "power of a power": "{{ (10 ** 1000) ** 1000 }}",
    "squaring": "{% set ns = namespace(n=10) %}{% for i in range(64) %}"
                "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n > 1 }}",
    "width": '{{ "x"|center(1000000000) }}',
    "method width": '{{ "x".ljust(1000000000) }}',
    "doubling": '{% set ns = namespace(s="x") %}{% for i in range(64) %}'
                "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "output": '{% for i in range(100000) %}{{ "xxxxxxxxxxxxxxxxxxxx" }}{% endfor %}',
    "recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
}  # fmt: skip


def _operator(token_for: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(uuid.uuid4(), admin=True)}"}


def _draft(html: str) -> dict[str, Any]:
    return {"name": f"attack_{uuid.uuid4().hex[:8]}", "category": "marketing",
            "subject": "Hi", "html": html, "variables": []}  # fmt: skip


@pytest.mark.parametrize("html", FAILING.values(), ids=FAILING.keys())
async def test_a_template_failing_at_render_is_a_422_at_preview_and_save(
    html: str, api_url: str, token_for: Any
) -> None:
    draft = _draft(html)
    async with httpx.AsyncClient(base_url=api_url, headers=_operator(token_for)) as c:
        started = time.monotonic()
        preview = await c.post("/api/notifications/templates/preview", json={"template": draft})
        assert preview.status_code == 422, preview.text
        assert preview.headers["content-type"] == "application/problem+json"
        saved = await c.post("/api/notifications/templates", json=draft)
        assert saved.status_code == 422, saved.text
        assert time.monotonic() - started < 4 * RENDER_SECONDS + 5
        stored = await c.get(f"/api/notifications/templates/{draft['name']}")
        assert stored.status_code == 422  # nothing was stored under that name


async def test_a_runaway_preview_does_not_hold_the_event_loop(api_url: str, token_for: Any) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as c:
        preview = asyncio.create_task(
            c.post("/api/notifications/templates/preview",
                   json={"template": _draft(NESTED_RANGE)}, headers=_operator(token_for))
        )  # fmt: skip
        answered_during = 0
        while not preview.done():
            started = time.monotonic()
            health = await c.get("/healthz")
            took = time.monotonic() - started
            assert health.status_code == 200
            assert took < 0.5, f"/healthz took {took:.2f} s during a render"
            answered_during += not preview.done()
        response = await preview
    assert response.status_code == 422, response.text
    assert "longer than" in response.json()["detail"]
    assert answered_during >= 2


async def test_at_send_a_runaway_template_fails_only_its_own_delivery(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, deliverer: Any,
    smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    victim, bystander = await make_users(2)
    name = f"runaway_{uuid.uuid4().hex[:8]}"
    # Stored as before the checks existed: the save route refuses it now.
    await runtime.db.fetch_one(
        """INSERT INTO notify.email_templates (name, locale, version, category, subject,
                                               html_body)
           VALUES (%s, 'en', 1, 'account', 'Hello', %s) RETURNING id""",
        (name, NESTED_RANGE),
    )
    for body in (
        {"userId": victim.id, "type": "account_notice", "title": "t", "message": "m",
         "template": name, "channels": ["email"]},
        {"userId": bystander.id, "type": "security_alert", "title": "New sign-in",
         "message": "A new sign-in", "channels": ["email"]},
    ):  # fmt: skip
        assert (await send(api_url, token_for, body)).status_code == 202
    # The drain's event loop keeps turning while the runaway renders (in a worker thread
    # once it outgrew the small inline budget).
    gaps: list[float] = []
    drain = asyncio.create_task(deliverer.drain(runtime.db))
    while not drain.done():
        started = time.monotonic()
        await asyncio.sleep(0.01)
        gaps.append(time.monotonic() - started)
    await drain
    assert max(gaps) < 0.5, f"the event loop stood still for {max(gaps):.2f} s"
    assert smtp_sink.to(victim.email) == []
    assert len(smtp_sink.to(bystander.email)) == 1
    rows = {str(r["user_id"]): r for r in await delivery_rows(runtime, [victim.id, bystander.id])}
    assert rows[victim.id]["status"] == "failed"
    assert "longer than" in rows[victim.id]["last_error"]
    assert rows[bystander.id]["status"] == "sent"
