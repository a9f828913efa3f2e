"""Pure-ASGI middleware (cheap on the ingest hot path): request id, access log and response
observers (one timing per request, shared by whoever wants it: Prometheus today), a request
body size limit that answers 413 before the body is read into memory, `X-Forwarded-For`
from configured proxies only, and access rules for `/metrics`.

A client's `X-Request-ID` is kept only when it is a short token (`REQUEST_ID_PATTERN`): it
goes into every log line and the append-only audit trail, so anything longer or with other
characters is replaced by a generated id (a log-injection or storage-growth channel else)."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import Counter
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mysetlist.core.errors import problem_response
from mysetlist.core.json_logging import request_id_var

access_log = logging.getLogger("mysetlist.access")

# nginx's convention for "the client closed the connection before the answer": the access
# log and the response observers see it instead of the 500 nobody received.
CLIENT_CLOSED_REQUEST = 499
CLIENT_DISCONNECTS = Counter(
    "mysetlist_http_client_disconnects",
    "Clients that closed the connection before their answer: phase=request (mid-body or"
    " while the request was handled), phase=response (while the answer was being sent)",
    ["phase"],
)

# What a client may choose as its request id: letters, digits and `._:-`, up to 128
# characters (a UUID, a trace id, a load balancer's id all fit).
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(value: str | None) -> str:
    """The client's request id when it is acceptable, else a fresh one."""
    if value is not None and REQUEST_ID_PATTERN.fullmatch(value):
        return value
    # 128 random bits as 32 hex digits, like uuid4().hex without building a UUID (per request)
    return os.urandom(16).hex()


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
        rid = request_id_from(_header(scope, b"x-request-id"))
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500
        response_started = False
        gone_before_answer = False

        async def receive_watching() -> Message:
            nonlocal gone_before_answer
            message = await receive()
            if message["type"] == "http.disconnect" and not response_started:
                gone_before_answer = True
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        phase: str | None = None
        try:
            await self.app(scope, receive_watching, send_with_id)
        except ClientDisconnect:
            # Nobody is left to answer: not an error of ours, so no traceback and no 500.
            phase = "response" if response_started else "request"
        finally:
            if phase is None and gone_before_answer:
                # A route that turned the disconnect into an answer (FastAPI's body parsing
                # answers 400): the client never saw it either.
                phase = "request"
            if phase is not None:
                CLIENT_DISCONNECTS.labels(phase).inc()
                status = CLIENT_CLOSED_REQUEST
            seconds = time.perf_counter() - started
            for observe in self.observers:
                observe(scope, status, seconds)
            if access_log.isEnabledFor(logging.INFO) and status >= 400:
                message = "%s %s %s" + (" (client disconnected)" if phase else "")
                access_log.info(
                    message, scope["method"], scope["path"], status,
                    extra={"fields": {"status": status, "ms": round(seconds * 1000, 2),
                                      **({"disconnect_phase": phase} if phase else {})}},
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


# How uvicorn must run the app: it must not believe `X-Forwarded-For` itself (it does, from
# 127.0.0.1, unless told otherwise); the app decides, from MYSETLIST_TRUSTED_PROXIES only
# (uvicorn's ProxyHeadersMiddleware with those hosts, added by api.py).
SERVER_OPTIONS: dict[str, Any] = {"proxy_headers": False}


class MetricsAccessMiddleware:
    """`/metrics` for allowed networks only (and with the metrics token, when one is set);
    anyone else gets a 404, as if there were nothing to find."""

    def __init__(self, app: ASGIApp, allow_from: Sequence[str], token: str | None) -> None:
        self.app = app
        self.anyone = "*" in allow_from
        self.networks = [ipaddress.ip_network(n, strict=False) for n in allow_from if n != "*"]
        self.expected = f"Bearer {token}".encode() if token else None

    def allows(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not self.anyone:
            try:
                address = ipaddress.ip_address(client[0]) if client else None
            except ValueError:
                address = None
            if address is None:
                return False
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            if not any(address in network for network in self.networks):
                return False
        if self.expected is not None:
            given = (_header(scope, b"authorization") or "").encode("latin-1")
            return hmac.compare_digest(given, self.expected)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics" and not self.allows(scope):
            response = problem_response(404, "Not Found", "no such resource",
                                        instance=scope["path"])  # fmt: skip
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _header(scope: dict[str, Any] | Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None
