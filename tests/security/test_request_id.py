"""Attack: a client's `X-Request-ID` flows into every log line and into the append-only audit
trail (a 3,018-character id was stored; issue 15, item 13). Only a short token of
`[A-Za-z0-9._:-]` is kept now; anything else is replaced by a generated id."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mysetlist.core.db import fetch_one_in
from mysetlist.core.json_logging import JsonFormatter
from mysetlist.core.runtime import Runtime
from tests.conditions import until

pytestmark = pytest.mark.db
FORGED = {"Authorization": "Bearer forged.token.here"}
GENERATED = re.compile(r"[0-9a-f]{32}")
HOSTILE: list[str | bytes] = [
    "x" * 3018,
    "x" * 129,
    "two words",
    '<script>alert("id")</script>',
    "id\tTAB",
    "ünïcode".encode(),
    '{"level":"critical","msg":"forged log line"}',
]


class _Lines(logging.Handler):
    """The JSON log lines as the server writes them (the formatter reads the request id)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.formatter = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def access_lines() -> Iterator[_Lines]:
    handler, logger = _Lines(), logging.getLogger("mysetlist.access")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


async def audited(runtime: Runtime, request_id: str) -> bool:
    async with runtime.db.transaction() as conn:
        row = await fetch_one_in(
            conn,
            "SELECT count(*) AS n FROM analytics.audit_log WHERE request_id = %s",
            (request_id,),
        )
    return row is not None and row["n"] > 0


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda v: repr(v)[:20])
async def test_a_hostile_request_id_is_replaced_before_logs_and_audit(
    api_url: str, runtime: Runtime, access_lines: _Lines, hostile: str | bytes
) -> None:
    async with httpx.AsyncClient(base_url=api_url) as client:
        # httpx sends a bytes value as it is (its types want str or bytes throughout)
        headers: Any = {**FORGED, "X-Request-ID": hostile}
        r = await client.get("/api/me/follows", headers=headers)
    assert r.status_code == 401
    rid = r.headers["x-request-id"]
    assert GENERATED.fullmatch(rid), rid
    # The refusal is audited under the generated id, never the client's.
    await until(lambda: audited(runtime, rid), "the audit entry under the generated id")
    text = hostile.decode() if isinstance(hostile, bytes) else hostile
    assert not await audited(runtime, text)
    async with runtime.db.transaction() as conn:
        longest = await fetch_one_in(
            conn, "SELECT coalesce(max(length(request_id)), 0) AS n FROM analytics.audit_log"
        )
    assert longest is not None
    assert longest["n"] <= 128
    logged = [line for line in access_lines.lines if rid in line]
    assert logged, access_lines.lines
    assert all(text not in line for line in access_lines.lines)


# Fixed values: test ids must be the same in every pytest-xdist worker.
@pytest.mark.parametrize(
    "good", ["7d1f5c1e-3b9a-4f0e-9c2d-5a6b7c8d9e0f", "lb-01:4f2a.77_x-y", "a" * 128]
)
async def test_a_well_formed_request_id_is_kept(api_url: str, runtime: Runtime, good: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as client:
        r = await client.get("/api/me/follows", headers={**FORGED, "X-Request-ID": good})
    assert r.status_code == 401
    assert r.headers["x-request-id"] == good
    await until(lambda: audited(runtime, good), "the audit entry under the client's id")
