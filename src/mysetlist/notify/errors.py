"""The notify services' refusals, in the domain's words: each subclasses one of core's kinds
(`core/errors.py` maps those to problem+json once), so a service raises them without knowing
HTTP. Routes alone raise `Problem`."""

from __future__ import annotations

from typing import Any

from mysetlist.core.errors import Conflict, InvalidInput, NotFound


class InvalidField(InvalidInput):
    """One input breaks a rule; the problem's `errors` names it (`field`, `message`)."""

    def __init__(self, field: str, message: str, *, detail: str | None = None) -> None:
        super().__init__(
            detail or f"{field}: {message}", errors=[{"field": field, "message": message}]
        )


class UnknownTemplate(InvalidInput):
    """No template of that name, saved or shipped (a 422: it names an input of the request)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"template: no template named {name!r}",
            errors=[{"field": "template", "message": "unknown template"}],
        )


class MissingTemplateVariables(InvalidField):
    """A named template declares a variable the send request does not give."""

    def __init__(self, template: str, variable: str) -> None:
        super().__init__(f"variables.{variable}", f"template {template!r} needs it")


class TemplateRejected(InvalidInput):
    """A template that cannot be saved or rendered: the part and, when known, the line."""

    def __init__(self, message: str, *, part: str, line: int | None) -> None:
        where = f" (line {line})" if line is not None else ""
        errors: list[Any] = [{"field": part, "message": message, "line": line}]
        super().__init__(f"{message}{where}", errors=errors)


class IdempotencyKeyReused(InvalidField):
    def __init__(self) -> None:
        super().__init__(
            "Idempotency-Key", "used for a different request",
            detail="Idempotency-Key: already used for a different request",
        )  # fmt: skip


class RequestInFlight(Conflict):
    """The first request under this Idempotency-Key is still being written: retry shortly."""

    retry_after = 1

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still in flight")


class NoProfile(NotFound):
    def __init__(self) -> None:
        super().__init__("no profile for this user")


class PushEndpointRefused(InvalidField):
    """Not a push service endpoint our workers may POST to (push/endpoints.py)."""

    def __init__(self, reason: str) -> None:
        super().__init__("endpoint", f"not a push service endpoint we send to: {reason}")


class UnknownPushSubscription(NotFound):
    def __init__(self) -> None:
        super().__init__("no such push subscription of yours")
