"""What the attack tests do as fans, visitors and SDKs, over HTTP against the real API:
get signed ids, post events, export, erase (the erasure job run here: the test API has no
worker). Nothing here reaches around the API except to run that job and to read what is
stored."""

from __future__ import annotations

import base64
import io
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from mysetlist.core.config import load_settings
from mysetlist.core.runtime import Runtime
from mysetlist.platform import service as platform
from mysetlist.privacy.erasure import erase

EVENTS = "/api/analytics/events"
ANONYMOUS_ID = "/api/analytics/anonymous-id"


def mid() -> str:
    return uuid.uuid4().hex


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def stable(token: str) -> str:
    """The stable id inside a signed token (what events and links store)."""
    return token.split(".")[0]


async def new_fan(runtime: Runtime, name: str = "Fan") -> str:
    async with runtime.db.transaction() as conn:
        return await platform.create_user(
            conn, runtime.cipher, display_name=name, email=f"{mid()[:12]}@example.test"
        )


async def signed_ids(c: httpx.AsyncClient, current: dict[str, str] | None = None) -> Any:
    r = await c.post(ANONYMOUS_ID, json=current) if current else await c.post(ANONYMOUS_ID)
    assert r.status_code == 200, r.text
    return r.json()


async def post(c: httpx.AsyncClient, body: dict[str, Any], token: str | None = None) -> None:
    r = await c.post(EVENTS, json=body, headers=bearer(token) if token else {})
    assert r.status_code == 202, r.text


async def own_events(c: httpx.AsyncClient, token: str) -> set[str]:
    """Message ids of the events the fan reads as theirs."""
    r = await c.get(EVENTS, params={"limit": 500}, headers=bearer(token))
    assert r.status_code == 200, r.text
    return {e["message_id"] for e in r.json()["events"]}


@dataclass
class Export:
    tables: dict[str, list[dict[str, Any]]]
    raw: bytes

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.tables.get(table, [])


async def export_of(c: httpx.AsyncClient, token: str) -> Export:
    r = await c.get("/api/privacy/export", headers=bearer(token), timeout=60)
    assert r.status_code == 200, r.text
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    tables: dict[str, list[dict[str, Any]]] = {}
    raw = b""
    for name in archive.namelist():
        data = archive.read(name)
        raw += data
        if name.endswith(".jsonl"):
            tables[name.removesuffix(".jsonl")] = [orjson.loads(x) for x in data.splitlines()]
    return Export(tables, raw)


async def erase_me(c: httpx.AsyncClient, runtime: Runtime, token: str) -> dict[str, Any]:
    r = await c.delete("/api/privacy/me", headers=bearer(token))
    assert r.status_code == 202, r.text
    status = await erase(
        runtime.db, runtime.redis, runtime.cipher, r.json()["erasure_request"],
        prefix=load_settings().redis_key_prefix,
    )  # fmt: skip
    assert status is not None
    assert status["status"] == "done"
    return status


async def events_of(runtime: Runtime, user_id: str) -> set[str]:
    rows = await runtime.db.fetch_all(
        "SELECT message_id FROM analytics.user_events WHERE user_id = %s", (user_id,)
    )
    return {r["message_id"] for r in rows}


async def stored(runtime: Runtime, message_id: str) -> dict[str, Any] | None:
    return await runtime.db.fetch_one(
        "SELECT user_id::text, anonymous_id, session_id, claimed_user_id::text, properties"
        " FROM analytics.user_events WHERE message_id = %s",
        (message_id,),
    )
