"""Templates as saved by operators (versioned per name and locale) over the shipped ones."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from mysetlist.core.db import Database, fetch_all_in, fetch_one_in, read_sql
from mysetlist.core.errors import Problem
from mysetlist.notify import templates
from mysetlist.notify.catalog import CATEGORIES
from mysetlist.notify.templates import TemplateProblem, TemplateSource

_PACKAGE = "mysetlist.notify"
# What a trial render at save time (and a preview) fills the standard variables with.
SAMPLE_VARIABLES = {
    "user_name": "Sample Fan", "app_url": "https://mysetlist.example", "title": "Sample title",
    "message": "Sample message", "unsubscribe_url": "https://mysetlist.example/u/sample",
}  # fmt: skip


async def latest(conn: AsyncConnection[Any], name: str, locale: str = "en") -> TemplateSource:
    """The template to render: the newest saved version (locale, then English), else the
    shipped one. Problem 422 when neither exists."""
    row = await fetch_one_in(
        conn, read_sql(_PACKAGE, "template_latest.sql"), {"name": name, "locale": locale}
    )
    if row is not None:
        return TemplateSource(
            row["name"], row["locale"], row["version"], row["category"], row["subject"],
            row["html_body"], row["text_body"], tuple(row["variables"]),
        )  # fmt: skip
    source = templates.shipped(name)
    if source is None:
        raise Problem(422, "Unprocessable Content", f"template: no template named {name!r}",
                      errors=[{"field": "template", "message": "unknown template"}])  # fmt: skip
    return source


def template_problem(exc: TemplateProblem) -> Problem:
    where = f" (line {exc.line})" if exc.line is not None else ""
    return Problem(
        422, "Unprocessable Content", f"{exc}{where}",
        errors=[{"field": exc.part, "message": str(exc), "line": exc.line}],
    )  # fmt: skip


async def save(db: Database, body: dict[str, Any], *, created_by: str) -> dict[str, Any]:
    """Validate and store a new version; 422 naming the part and line of any problem."""
    name, locale = body["name"], body["locale"]
    if body["category"] not in CATEGORIES:
        expected = f"one of {list(CATEGORIES)}"
        raise Problem(
            422, "Unprocessable Content", f"category: must be {expected}",
            errors=[{"field": "category", "message": expected}],
        )  # fmt: skip
    try:
        templates.validate(body["subject"], body["html"], body.get("text"), body["variables"])
        draft = TemplateSource(
            name, locale, 0, body["category"], body["subject"], body["html"], body.get("text"),
            tuple(body["variables"]),
        )  # fmt: skip
        await templates.trial_render(draft, SAMPLE_VARIABLES)
    except TemplateProblem as exc:
        raise template_problem(exc) from None
    async with db.transaction() as conn:
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"notify.template:{name}",)
        )
        row = await fetch_one_in(
            conn,
            read_sql(_PACKAGE, "template_insert.sql"),
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
        saved = await fetch_all_in(conn, read_sql(_PACKAGE, "template_list.sql"))
    names = {(row["name"], row["locale"]) for row in saved}
    for name in templates.shipped_names():
        source = templates.shipped(name)
        if source is not None and (name, "en") not in names:
            saved.append(
                {"name": name, "locale": "en", "version": 0, "category": source.category,
                 "variables": list(source.variables), "created_at": None}
            )  # fmt: skip
    return sorted(saved, key=lambda row: (row["name"], row["locale"]))
