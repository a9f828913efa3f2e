"""The notify routes' HTTP contract in /openapi.json: every 2xx has a schema (JSON, or the
media type it really is), every error is declared as problem+json, and the enums of the
models are the catalog's own values."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mysetlist.notify.api_models import Category, Channel, DigestFrequency
from mysetlist.notify.catalog import CATEGORIES, CHANNELS, DIGEST_FREQUENCIES

pytestmark = pytest.mark.db
PREFIXES = ("/api/notifications", "/api/webhooks")


def operations(doc: dict[str, Any], prefixes: tuple[str, ...]) -> list[tuple[str, str, Any]]:
    return [
        (method.upper(), path, op)
        for path, ops in doc["paths"].items()
        if path.startswith(prefixes)
        for method, op in ops.items()
    ]


def contract_gaps(doc: dict[str, Any], prefixes: tuple[str, ...]) -> list[str]:
    """What a generated client could not type: a 2xx body without a schema, a route
    without a 2xx/3xx, an error status not declared as problem+json."""
    gaps = []
    for method, path, op in operations(doc, prefixes):
        answers = {s: r for s, r in op["responses"].items() if s[0] in "23"}
        if not answers:
            gaps.append(f"{method} {path}: no 2xx or 3xx declared")
        for status, response in answers.items():
            for media_type, content in response.get("content", {}).items():
                if not content.get("schema"):
                    gaps.append(f"{method} {path} {status} {media_type}: no schema")
        takes_input = bool(op.get("parameters") or op.get("requestBody"))
        for status in ("401", "422") if takes_input else ("401",):
            content = op["responses"].get(status, {}).get("content", {})
            if list(content) != ["application/problem+json"]:
                gaps.append(f"{method} {path} {status}: not problem+json ({list(content)})")
    return gaps


async def test_every_notify_route_has_a_typed_answer_and_problem_errors(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as c:
        doc = (await c.get("/openapi.json")).json()
    assert len(operations(doc, PREFIXES)) == 19
    assert contract_gaps(doc, PREFIXES) == []
    prefs = doc["components"]["schemas"]["PreferencesUpdate"]
    assert prefs["additionalProperties"] is False  # an unknown field is a 422, not ignored


def test_the_contract_enums_are_the_catalog() -> None:
    assert tuple(Category) == CATEGORIES
    assert tuple(Channel) == CHANNELS
    assert tuple(DigestFrequency) == DIGEST_FREQUENCIES
