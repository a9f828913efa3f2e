"""Pure-ASGI middleware (cheap on the ingest hot path): request id, access log and response
observers (one timing per request, shared by whoever wants it: Prometheus today), and a
request body size limit that answers 413 before the body is read into memory."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mysetlist.core.errors import problem_response
from mysetlist.core.json_logging import request_id_var

access_log = logging.getLogger("mysetlist.access")

# Called after every HTTP response with the final scope (it holds the matched route),
# the status and the seconds taken. Must be cheap and must not raise.
ResponseObserver = Callable[[Scope, int, float], None]


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, observers: Sequence[ResponseObserver] = ()) -> None:
        self.app = app
        self.observers = tuple(observers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _header(scope, b"x-request-id") or uuid.uuid4().hex
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            for observe in self.observers:
                observe(scope, status, seconds)
            if access_log.isEnabledFor(logging.INFO) and status >= 400:
                access_log.info(
                    "%s %s %s", scope["method"], scope["path"], status,
                    extra={"fields": {"status": status, "ms": round(seconds * 1000, 2)}},
                )  # fmt: skip
            request_id_var.reset(token)


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413, "Content Too Large",
            f"request body exceeds {self.max_bytes} bytes", instance=scope["path"],
        )  # fmt: skip
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


# Every response: no MIME sniffing, no referrer leak, no framing. HTML responses also get a
# CSP allowing only our own scripts unless the route set a stricter one (the dashboard does).
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
HTML_CSP = (
    b"default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none';"
    b" frame-ancestors 'none'; form-action 'self'"
)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                is_html = any(
                    k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers
                )
                if is_html and b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", HTML_CSP))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _header(scope: dict[str, Any] | Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None
