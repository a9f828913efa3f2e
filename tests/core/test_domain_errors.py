"""Services raise domain errors; `core.errors` maps each kind to problem+json once."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from mysetlist.core import errors
from mysetlist.core.errors import install_error_handlers


class UnknownTemplate(errors.NotFound):
    """A capability's own error: it names a kind, never a status."""


CASES: list[tuple[errors.DomainError, int, dict[str, str]]] = [
    (errors.MalformedInput("bad cursor"), 400, {}),
    (errors.NotAllowed("another fan's data"), 403, {}),
    (UnknownTemplate("no template 'x'"), 404, {}),
    (errors.Conflict("a run is going", active_run_id=7), 409, {}),
    (errors.TooLarge("over 1 MiB"), 413, {}),
    (errors.UnsupportedInput("br is not read"), 415, {}),
    (errors.InvalidInput("bad", errors=[{"field": "type", "message": "unknown"}]), 422, {}),
    (errors.RateLimited("slow down", retry_after=12), 429, {"retry-after": "12"}),
    (errors.Unavailable("redis is down", retry_after=3), 503, {"retry-after": "3"}),
    (errors.Unavailable("no model yet"), 503, {}),
]


@pytest.mark.parametrize(("error", "status", "headers"), CASES)
async def test_each_kind_answers_its_status_as_a_problem_document(
    error: errors.DomainError, status: int, headers: dict[str, str]
) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise")
    async def _raise() -> None:
        raise error

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/raise")
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    for name, value in headers.items():
        assert answer.headers[name] == value
    if "retry-after" not in headers:
        assert "retry-after" not in answer.headers
    body = answer.json()
    assert body["status"] == status
    assert body["title"] == type(error).title
    assert body["detail"] == error.detail
    assert body["instance"] == "/raise"
    assert body.get("errors") == error.errors
    for key, value in error.extra.items():
        assert body[key] == value
