"""GDPR export: a streamed ZIP of JSON Lines per table with a manifest, only the user's
rows, rate limited and audited."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
import orjson
import pytest

from mysetlist.core.db import fetch_all_in
from mysetlist.core.runtime import Runtime
from tests.privacy.seeding import new_user, seed_catalog, seed_user_everywhere

pytestmark = pytest.mark.db


async def test_export_holds_every_table_about_the_user_and_nothing_of_others(
    runtime: Runtime, api_url: str, token_for: Any
) -> None:
    user, other = new_user(runtime.cipher), new_user(runtime.cipher)
    async with runtime.db.transaction() as conn:
        await seed_catalog(conn)
        seeded = await seed_user_everywhere(conn, runtime.cipher, user)
        await seed_user_everywhere(conn, runtime.cipher, other)
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        response = await client.get(
            "/api/privacy/export",
            headers={"Authorization": f"Bearer {token_for(user.user_id)}", "X-Request-ID": "exp-1"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    manifest = orjson.loads(archive.read("manifest.json"))
    files = {f["table"]: f["rows"] for f in manifest["files"]}
    assert seeded - {"notify.suppressions"} <= set(files)
    events = [
        orjson.loads(line) for line in archive.read("analytics.user_events.jsonl").splitlines()
    ]
    assert len(events) == files["analytics.user_events"] == 2  # incl. the pre-login event
    profile = orjson.loads(archive.read("app.users.jsonl"))
    assert profile["email"] == user.email  # decrypted for its owner
    everything = b"".join(archive.read(name) for name in archive.namelist())
    assert other.user_id.encode() not in everything
    assert other.email.encode() not in everything
    async with runtime.db.transaction() as conn:
        audited = await fetch_all_in(
            conn,
            "SELECT action, actor_id::text, target_id, request_id FROM analytics.audit_log"
            " WHERE request_id = 'exp-1'",
        )
    assert audited == [
        {"action": "privacy.export", "actor_id": user.user_id, "target_id": user.user_id,
         "request_id": "exp-1"}
    ]  # fmt: skip


async def test_exports_are_rate_limited_and_only_operators_export_others(
    runtime: Runtime, api_url: str, token_for: Any
) -> None:
    user, other = new_user(runtime.cipher), new_user(runtime.cipher)
    mine = {"Authorization": f"Bearer {token_for(user.user_id)}"}
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        refused = await client.get(f"/api/privacy/users/{other.user_id}/export", headers=mine)
        assert refused.status_code == 403
        statuses = [
            (await client.get("/api/privacy/export", headers=mine)).status_code for _ in range(6)
        ]
        assert statuses == [200] * 5 + [429]  # MYSETLIST_PRIVACY_EXPORT_RATE_LIMIT=5/hour
        limited = await client.get("/api/privacy/export", headers=mine)
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) > 0
        assert limited.json()["title"] == "Too Many Requests"
        assert limited.json()["detail"] == "exports are limited to 5 per 1 hour"
        operator = {"Authorization": f"Bearer {token_for(other.user_id, admin=True)}"}
        theirs = await client.get(f"/api/privacy/users/{user.user_id}/export", headers=operator)
    assert theirs.status_code == 200
    assert "manifest.json" in zipfile.ZipFile(io.BytesIO(theirs.content)).namelist()


async def test_json_values_are_exported_as_stored_even_past_64_bit_integers(
    runtime: Runtime, api_url: str, token_for: Any
) -> None:
    """jsonb keeps any number; an endpoint parsing with the standard library can store an
    integer orjson cannot write. The export writes JSON columns as PostgreSQL has them, so
    such a row neither breaks the archive mid-stream nor comes out rounded."""
    user = new_user(runtime.cipher)
    huge = 2**80 + 1
    async with runtime.db.transaction() as conn:
        await seed_catalog(conn)
        await seed_user_everywhere(conn, runtime.cipher, user)
        await conn.execute(
            "UPDATE analytics.user_events SET properties = %s::jsonb"
            " WHERE user_id = %s OR anonymous_id = %s",
            (f'{{"seats": {huge}, "nested": {{"n": [{huge}]}}}}', user.user_id, user.anonymous_id),
        )
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        response = await client.get(
            "/api/privacy/export", headers={"Authorization": f"Bearer {token_for(user.user_id)}"}
        )
    assert response.status_code == 200, response.text
    archive = zipfile.ZipFile(io.BytesIO(response.content))  # a whole archive: read to its end
    lines = archive.read("analytics.user_events.jsonl").splitlines()
    assert lines
    for line in lines:
        properties = json.loads(line)["properties"]  # the standard library keeps big ints
        assert properties == {"seats": huge, "nested": {"n": [huge]}}
