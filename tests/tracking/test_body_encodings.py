"""Encoded bodies on the Segment and PostHog endpoints: `?compression=base64` (raw, and
form-encoded `data=` as posthog-js posts it), `Content-Encoding: deflate` (zlib, and the raw
deflate some clients send), and broken or oversized encodings as a 4xx."""

from __future__ import annotations

import base64
import urllib.parse
import uuid
import zlib
from typing import Any

import httpx
import orjson
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from tests.tracking.conftest import count_events

pytestmark = pytest.mark.db

KEY = "test-write-key"
SEGMENT_AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}


def _posthog(marker: str, n: int = 2) -> bytes:
    events = [{"event": "search", "distinct_id": marker, "properties": {"q": "a+b/c??????"}}] * n
    return orjson.dumps({"api_key": KEY, "batch": events})


def _segment(marker: str, n: int = 2) -> bytes:
    return orjson.dumps(
        {"batch": [{"type": "track", "event": "search", "anonymousId": marker}] * n}
    )


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-15)
    return packer.compress(data) + packer.flush()


async def test_posthog_base64_raw_and_form_encoded(api_url: str, runtime: Runtime) -> None:
    marker = "b64-" + uuid.uuid4().hex
    encoded = base64.b64encode(_posthog(marker))
    assert b"/" in encoded  # "???" encodes as "Pz8/": a form encoding must keep it
    async with httpx.AsyncClient(base_url=api_url) as c:
        raw = await c.post("/batch/?compression=base64", content=encoded,
                           headers={"content-type": "text/plain"})  # fmt: skip
        # posthog-js: `data=<base64>` form-encoded, compression in the query or the form
        form = await c.post(
            "/e/?compression=base64",
            content="data=" + urllib.parse.quote(encoded.decode(), safe=""),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        in_form = await c.post(
            "/e/",
            content=urllib.parse.urlencode({"data": encoded.decode(), "compression": "base64"}),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        plain_form = await c.post(  # older posthog-js: form-encoded JSON, no compression
            "/e/",
            content=urllib.parse.urlencode({"data": _posthog(marker).decode()}),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    for r in (raw, form, in_form, plain_form):
        assert r.status_code == 200, r.text
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 8
    rows = await runtime.db.fetch_all(
        "SELECT properties FROM analytics.user_events WHERE anonymous_id = %s", (marker,)
    )
    assert {orjson.dumps(r["properties"]) for r in rows} == {b'{"q":"a+b/c??????"}'}


@pytest.mark.parametrize("packing", ["zlib", "raw"])
async def test_deflate_bodies_on_segment_and_posthog(
    api_url: str, runtime: Runtime, packing: str
) -> None:
    marker = f"deflate-{packing}-" + uuid.uuid4().hex
    pack = zlib.compress if packing == "zlib" else _raw_deflate
    headers = {"content-type": "application/json", "content-encoding": "deflate"}
    async with httpx.AsyncClient(base_url=api_url) as c:
        seg = await c.post("/v1/batch", content=pack(_segment(marker)),
                           headers={**headers, **SEGMENT_AUTH})  # fmt: skip
        ph = await c.post("/batch/", content=pack(_posthog(marker)), headers=headers)
    assert seg.status_code == 200, seg.text
    assert ph.status_code == 200, ph.text
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 4


async def test_broken_or_oversized_encodings_are_a_4xx(
    api_url: str, runtime: Runtime, settings: Settings
) -> None:
    marker = "bad-enc-" + uuid.uuid4().hex
    bomb = zlib.compress(b" " * (settings.max_body_bytes + 1) + _posthog(marker))
    form = {"content-type": "application/x-www-form-urlencoded"}
    cases: list[tuple[str, bytes, dict[str, Any], int]] = [
        ("/batch/?compression=base64", b"e30", {}, 400),  # bad padding
        ("/batch/?compression=base64", base64.b64encode(b"\xff\xfe not json"), {}, 400),
        ("/v1/batch", b"not deflate", {"content-encoding": "deflate", **SEGMENT_AUTH}, 400),
        ("/batch/", b"not deflate", {"content-encoding": "deflate"}, 400),
        ("/batch/", bomb, {"content-encoding": "deflate"}, 413),
        ("/e/", b"compression=base64", form, 400),  # a form without data
        ("/e/", b"data=%ff%fe", form, 400),
    ]
    async with httpx.AsyncClient(base_url=api_url) as c:
        for path, content, headers, status in cases:
            r = await c.post(path, content=content, headers=headers)
            assert r.status_code == status, (path, content[:20], r.text)
            assert r.headers["content-type"] == "application/problem+json"
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 0
