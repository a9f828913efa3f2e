"""Templates as saved by operators (versioned per name and locale) over the shipped ones."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from mysetlist.core.db import Database, fetch_all_in, fetch_one_in, lock_key, read_sql
from mysetlist.notify.catalog import CATEGORIES
from mysetlist.notify.errors import InvalidField, TemplateRejected, UnknownTemplate
from mysetlist.notify.templates import rendering
from mysetlist.notify.templates.rendering import TemplateProblem, TemplateSource

_PACKAGE = "mysetlist.notify.templates"
# What a trial render at save time (and a preview) fills the standard variables with.
SAMPLE_VARIABLES = {
    "user_name": "Sample Fan", "app_url": "https://mysetlist.example", "title": "Sample title",
    "message": "Sample message", "unsubscribe_url": "https://mysetlist.example/u/sample",
}  # fmt: skip


async def latest(conn: AsyncConnection[Any], name: str, locale: str = "en") -> TemplateSource:
    """The template to render: the newest saved version (locale, then English), else the
    shipped one. UnknownTemplate when neither exists."""
    row = await fetch_one_in(
        conn, read_sql(_PACKAGE, "latest.sql"), {"name": name, "locale": locale}
    )
    if row is not None:
        return TemplateSource(
            row["name"], row["locale"], row["version"], row["category"], row["subject"],
            row["html_body"], row["text_body"], tuple(row["variables"]),
        )  # fmt: skip
    source = rendering.shipped(name)
    if source is None:
        raise UnknownTemplate(name)
    return source


def rejected(exc: TemplateProblem) -> TemplateRejected:
    """The domain error of a template that cannot be saved or rendered."""
    return TemplateRejected(str(exc), part=exc.part, line=exc.line)


async def save(db: Database, body: dict[str, Any], *, created_by: str) -> dict[str, Any]:
    """Validate and store a new version; TemplateRejected names the part and line of any
    problem."""
    name, locale = body["name"], body["locale"]
    if body["category"] not in CATEGORIES:
        expected = f"one of {list(CATEGORIES)}"
        raise InvalidField("category", expected, detail=f"category: must be {expected}")
    try:
        rendering.validate(body["subject"], body["html"], body.get("text"), body["variables"])
        draft = TemplateSource(
            name, locale, 0, body["category"], body["subject"], body["html"], body.get("text"),
            tuple(body["variables"]),
        )  # fmt: skip
        await rendering.trial_render(draft, SAMPLE_VARIABLES)
    except TemplateProblem as exc:
        raise rejected(exc) from None
    async with db.transaction() as conn:
        await conn.execute(
            read_sql(_PACKAGE, "lock_name.sql"), {"key": lock_key(f"notify.template:{name}")}
        )
        row = await fetch_one_in(
            conn,
            read_sql(_PACKAGE, "insert.sql"),
            {
                "name": name, "locale": locale, "category": body["category"],
                "subject": body["subject"], "html": body["html"], "text": body.get("text"),
                "variables": list(body["variables"]), "created_by": created_by,
            },
        )  # fmt: skip
    assert row is not None
    return row


async def list_all(db: Database) -> list[dict[str, Any]]:
    async with db.transaction() as conn:
        saved = await fetch_all_in(conn, read_sql(_PACKAGE, "list_all.sql"))
    names = {(row["name"], row["locale"]) for row in saved}
    for name in rendering.shipped_names():
        source = rendering.shipped(name)
        if source is not None and (name, "en") not in names:
            saved.append(
                {"name": name, "locale": "en", "version": 0, "category": source.category,
                 "variables": list(source.variables), "created_at": None}
            )  # fmt: skip
    return sorted(saved, key=lambda row: (row["name"], row["locale"]))


async def preview(
    db: Database,
    *,
    name: str | None,
    locale: str,
    draft: TemplateSource | None,
    variables: dict[str, Any],
) -> rendering.RenderedEmail:
    """A saved template (`name`) or an unsaved `draft` rendered with `variables` over the
    sample ones; TemplateRejected when it cannot be."""
    try:
        if draft is not None:
            rendering.validate(draft.subject, draft.html, draft.text, draft.variables)
            source = draft
        elif name is not None:
            async with db.transaction() as conn:
                source = await latest(conn, name, locale)
        else:
            raise InvalidField("name", "give name or template")
        return await rendering.render_off_loop(source, {**SAMPLE_VARIABLES, **variables})
    except TemplateProblem as exc:
        raise rejected(exc) from None
