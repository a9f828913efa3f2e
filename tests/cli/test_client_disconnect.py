"""A client that closes its connection halfway through the request body is no server error:
one info line in the access log with status 499, `mysetlist_http_client_disconnects_total`
counts it, and nothing is logged as an unhandled error."""

from __future__ import annotations

import logging
import re
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conditions import wait_until

pytestmark = pytest.mark.db

DISCONNECTS = re.compile(
    r'^mysetlist_http_client_disconnects_total\{phase="request"\} (\S+)$', re.M
)


def _disconnects(api_url: str) -> float:
    match = DISCONNECTS.search(httpx.get(f"{api_url}/metrics", timeout=5).text)
    return float(match.group(1)) if match else 0.0


def _send_half_a_body(api_url: str, path: str) -> None:
    """Announce 2,000 bytes of JSON, send 1,000, close the socket."""
    url = urlsplit(api_url)
    with socket.create_connection((url.hostname, url.port)) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            "Content-Type: application/json\r\nContent-Length: 2000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"events": [' + b" " * 988)


@pytest.mark.parametrize(
    "path",
    [
        "/api/analytics/events",  # reads the raw body itself
        "/api/analytics/anonymous-id",  # a pydantic body FastAPI parses
    ],
)
def test_a_client_gone_mid_body_is_an_info_line_and_a_counter(
    api_url: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = _disconnects(api_url)
    with caplog.at_level(logging.INFO):
        _send_half_a_body(api_url, path)
        wait_until(lambda: _disconnects(api_url) >= before + 1, "the disconnect counted")
        line = wait_until(
            lambda: next(
                (r for r in caplog.records
                 if r.name == "mysetlist.access" and r.getMessage().startswith(f"POST {path}")),
                None,
            ),
            "the access log line",
        )  # fmt: skip
    assert line.levelno == logging.INFO
    assert " 499 " in line.getMessage() + " "
    assert line.fields["status"] == 499  # type: ignore[attr-defined]
    assert line.fields["disconnect_phase"] == "request"  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    ]
    # The server is fine: the next request is answered.
    assert httpx.get(f"{api_url}/healthz", timeout=5).status_code == 200
