"""Templates: sandboxed rendering, escaping, header injection, save-time validation and the
operator API with preview."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from mysetlist.notify.templates import rendering

pytestmark = pytest.mark.db


def test_html_is_escaped_but_subject_and_text_are_not() -> None:
    source = rendering.shipped("welcome")
    assert source is not None
    rendered = rendering.render(source, {"user_name": "<b>Tom & Jerry</b>", "app_url": "https://a"})
    assert "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;" in rendered.html
    assert rendered.subject == "Welcome to MySetlist, <b>Tom & Jerry</b>!"
    assert "<b>Tom & Jerry</b>" in rendered.text  # generated text part, unescaped
    assert 'style="' in rendered.html  # CSS inlined
    assert "<style>" not in rendered.html


def test_a_variable_that_breaks_the_subject_line_is_refused() -> None:
    source = rendering.shipped("show_reminder")
    assert source is not None
    with pytest.raises(rendering.TemplateProblem, match="line break"):
        rendering.render(
            source,
            {"artist_name": "X\r\nBcc: victim@example.test", "reminder_text": "t",
             "show_url": "https://a"},
        )  # fmt: skip


def test_the_sandbox_refuses_attribute_access_to_internals() -> None:
    source = rendering.TemplateSource(
        "evil", "en", 0, "marketing", "s", "{{ title.__class__.__mro__ }}", None, ()
    )
    with pytest.raises(rendering.TemplateProblem):
        rendering.render(source, {"title": "x"})


def test_missing_variable_fails_instead_of_rendering_empty() -> None:
    source = rendering.shipped("vote_summary")
    assert source is not None
    with pytest.raises(rendering.TemplateProblem, match="missing variable"):
        rendering.render(source, {"total_votes": 3})


def test_every_shipped_template_renders_with_its_declared_variables() -> None:
    for name in ("welcome", "show_reminder", "vote_summary", "new_show_announced",
                 "followed_artist_update", "weekly_digest"):  # fmt: skip
        source = rendering.shipped(name)
        assert source is not None, name
        variables: dict[str, Any] = {v: "x" for v in source.variables}
        variables |= {"items": [{"title": "t", "message": "m"}], "user_name": "u",
                      "app_url": "https://a", "title": "t", "message": "m"}  # fmt: skip
        rendered = rendering.render(source, variables)
        assert rendered.subject
        assert rendered.html
        assert rendered.text


async def test_operators_save_versions_and_bad_templates_get_a_422_with_the_line(
    api_url: str, token_for: Any
) -> None:
    operator = {"Authorization": f"Bearer {token_for(uuid.uuid4(), admin=True)}"}
    fan = {"Authorization": f"Bearer {token_for(uuid.uuid4())}"}
    name = f"promo_{uuid.uuid4().hex[:8]}"
    body = {"name": name, "category": "marketing", "subject": "Hi {{ user_name }}",
            "html": "<p>{{ offer }}</p>", "variables": ["offer"]}  # fmt: skip
    async with httpx.AsyncClient(base_url=api_url) as c:
        assert (
            await c.post("/api/notifications/templates", json=body, headers=fan)
        ).status_code == 403
        first = await c.post("/api/notifications/templates", json=body, headers=operator)
        second = await c.post("/api/notifications/templates", json=body, headers=operator)
        assert (first.status_code, second.status_code) == (201, 201)
        assert (first.json()["version"], second.json()["version"]) == (1, 2)

        undeclared = {**body, "html": "<p>{{ offer }}</p>\n<p>{{ secret }}</p>"}
        r = await c.post("/api/notifications/templates", json=undeclared, headers=operator)
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0] == {
            "field": "html",
            "line": 2,
            "message": "html: variable 'secret' is not declared",
        }
        broken = {**body, "html": "<p>ok</p>\n\n{% if offer %}<p>unclosed"}
        r = await c.post("/api/notifications/templates", json=broken, headers=operator)
        assert r.status_code == 422
        assert r.json()["errors"][0]["line"] == 3
        r = await c.post("/api/notifications/templates", json={**body, "subject": "a\nb"},
                         headers=operator)  # fmt: skip
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "subject"
        # nothing of the refused ones was stored
        latest = await c.get(f"/api/notifications/templates/{name}", headers=operator)
        assert latest.json()["version"] == 2

        preview = await c.post(
            "/api/notifications/templates/preview",
            json={"name": name, "variables": {"offer": "<i>2 for 1</i>"}}, headers=operator,
        )  # fmt: skip
        assert preview.status_code == 200
        assert "&lt;i&gt;2 for 1&lt;/i&gt;" in preview.json()["html"]
        assert preview.json()["subject"] == "Hi Sample Fan"
        missing = await c.post("/api/notifications/templates/preview",
                               json={"name": name}, headers=operator)  # fmt: skip
        assert missing.status_code == 422
        neither = await c.post("/api/notifications/templates/preview", json={}, headers=operator)
        assert neither.status_code == 422
        assert neither.json()["errors"] == [{"field": "name", "message": "give name or template"}]
        unknown = await c.get("/api/notifications/templates/no_such_template", headers=operator)
        assert unknown.status_code == 422  # it names an input, like a send naming it
        assert unknown.json()["detail"] == "template: no template named 'no_such_template'"
        assert unknown.json()["errors"] == [{"field": "template", "message": "unknown template"}]
        listed = await c.get("/api/notifications/templates", headers=operator)
        names = {t["name"] for t in listed.json()["templates"]}
        assert {name, "welcome", "weekly_digest", "show_reminder"} <= names
