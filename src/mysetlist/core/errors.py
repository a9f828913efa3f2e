"""RFC 9457 problem+json for every error the API returns, 4xx and 5xx alike."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """A service's refusal, said in the domain's words: services raise these and know no
    HTTP. Each capability subclasses the kinds below (`class UnknownTemplate(NotFound)`);
    `install_error_handlers` maps every kind to its problem+json status once, here.

    `errors` names each invalid input (`field`, `message`); `extra` adds members to the
    problem document (e.g. `active_run_id` on a conflict)."""

    title = "Bad Request"

    def __init__(
        self,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, str]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if title is not None:
            self.title = title
        self.errors = errors
        self.extra = extra


class MalformedInput(DomainError):
    """The input cannot be read at all (bad encoding, cursor, shape)."""

    title = "Bad Request"


class InvalidInput(DomainError):
    """The input is readable but breaks a rule (unknown event type, missing variable)."""

    title = "Unprocessable Content"


class NotAllowed(DomainError):
    """The caller is known but may not do this (another fan's data, a browser key)."""

    title = "Forbidden"


class NotFound(DomainError):
    title = "Not Found"


class Conflict(DomainError):
    """The present state refuses it (a run already going, a key reused with other input)."""

    title = "Conflict"


class TooLarge(DomainError):
    title = "Content Too Large"


class UnsupportedInput(DomainError):
    """A media type or content encoding this service does not read."""

    title = "Unsupported Media Type"


class RateLimited(DomainError):
    """Too many; `retry_after` seconds until the next one is allowed."""

    title = "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = max(1, int(retry_after))


class Unavailable(DomainError):
    """A dependency is down or the work cannot start now; `retry_after` when known."""

    title = "Service Unavailable"

    def __init__(self, detail: str, *, retry_after: int | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


# The one mapping from domain kinds to HTTP. Most specific first is not needed: every
# capability error subclasses exactly one kind.
_STATUS_OF_KIND: dict[type[DomainError], int] = {
    MalformedInput: 400,
    NotAllowed: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    UnsupportedInput: 415,
    InvalidInput: 422,
    RateLimited: 429,
    Unavailable: 503,
}


def status_of(error: DomainError) -> int:
    """The HTTP status of a domain error: that of the first kind in its class's MRO."""
    for kind in type(error).__mro__:
        if kind in _STATUS_OF_KIND:
            return _STATUS_OF_KIND[kind]
    return 400


def domain_error_response(error: DomainError, *, instance: str | None = None) -> Response:
    headers: dict[str, str] = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    extra = dict(error.extra)
    if error.errors is not None:
        extra["errors"] = error.errors
    return problem_response(
        status_of(error), error.title, error.detail, instance=instance, headers=headers, **extra
    )


class Problem(Exception):
    """Raise from a route (the HTTP layer) to answer with a problem document. Services
    raise a `DomainError` instead."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


class FieldError(BaseModel):
    field: str = Field(description="dotted path of the invalid input, or `body`")
    message: str


class ProblemDocument(BaseModel):
    """The body of every error response (RFC 9457 problem+json). Some problems carry extra
    members (e.g. `errors` on 4xx validation, `active_run_id` on an ETL conflict)."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int = Field(ge=400, le=599)
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="each invalid input, on validation problems"
    )


_PROBLEM_DESCRIPTIONS = {
    400: "Bad request (malformed body, cursor or encoding)",
    401: "Not authenticated (missing, invalid or revoked credentials)",
    403: "Authenticated, but not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Body too large",
    415: "Unsupported media type or content encoding",
    422: "Invalid request body or parameters (`errors` names each)",
    429: "Rate limited (see Retry-After)",
    500: "Internal error",
    503: "Not ready (a dependency is down)",
}

# OpenAPI `responses=` entries for problem+json errors, by status: a route (or a router)
# declares the ones it can answer, e.g. `responses=problem_responses(401, 404)`. The schema is the
# `ProblemDocument` component, which `install_error_handlers` adds to the app's schema.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}},
    }
    for status, description in _PROBLEM_DESCRIPTIONS.items()
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `PROBLEM_RESPONSES` entries of `statuses`, always with 400 (FastAPI's answer to
    a body it cannot decode), 422 (invalid input; declaring it replaces FastAPI's default
    422, which is not our body) and 500."""
    return {s: PROBLEM_RESPONSES[s] for s in sorted({*statuses, 400, 422, 500})}


def _add_problem_schemas(app: FastAPI) -> None:
    """Put `ProblemDocument` (and what it refers to) into the app's OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            document = ProblemDocument.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(document.pop("$defs", {}))
            components["ProblemDocument"] = document
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        errors.append({"field": ".".join(loc) or "body", "message": err.get("msg", "invalid")})
    return errors


def install_error_handlers(app: FastAPI) -> None:
    _add_problem_schemas(app)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(
            exc.status, exc.title, exc.detail,
            instance=request.url.path, headers=exc.headers, **exc.extra,
        )  # fmt: skip

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        return domain_error_response(exc, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        from http import HTTPStatus

        title = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        return problem_response(
            exc.status_code, title, detail, instance=request.url.path, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return problem_response(
            422, "Unprocessable Content", "the request body or parameters are invalid",
            instance=request.url.path, errors=_validation_errors(exc),
        )  # fmt: skip

    @app.exception_handler(PoolTimeout)
    async def _pool_busy(request: Request, exc: PoolTimeout) -> Response:
        # Overload, not a bug: every pooled connection stayed busy for the pool's timeout.
        log.warning("no database connection for %s %s: %s", request.method, request.url.path, exc)
        return problem_response(
            503, "Service Unavailable", "the server is busy; try again shortly",
            instance=request.url.path, headers={"Retry-After": "1"},
        )  # fmt: skip

    @app.exception_handler(psycopg.OperationalError)
    async def _database_unavailable(request: Request, exc: psycopg.OperationalError) -> Response:
        # The database went away mid-request (a restart, a failover, a statement timeout):
        # the transaction did not commit, so the client may retry.
        log.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
        return problem_response(
            503, "Service Unavailable", "the database is unavailable; try again shortly",
            instance=request.url.path, headers={"Retry-After": "5"},
        )  # fmt: skip

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "Internal Server Error", instance=request.url.path)
