"""The audit trail: append-only even for the owner, filterable by operators, and fed by
failed authentications and refusals (with the request id), counted in /metrics."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from mysetlist.core.audit import record_audit
from mysetlist.core.db import fetch_all_in
from mysetlist.core.runtime import Runtime
from tests.conditions import until

pytestmark = pytest.mark.db


async def test_the_audit_log_refuses_updates_deletes_and_truncates(runtime: Runtime) -> None:
    async with runtime.db.transaction() as conn:
        entry = await record_audit(conn, "privacy.export", actor_id=str(uuid.uuid4()))
    for statement in (
        "UPDATE analytics.audit_log SET outcome = 'failure' WHERE id = %(id)s",
        "DELETE FROM analytics.audit_log WHERE id = %(id)s",
        "TRUNCATE analytics.audit_log",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with runtime.db.transaction() as conn:
                await conn.execute(statement, {"id": entry})
    # Even the erasure's redaction switch lets through only blanking identities.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await _redacting(
            runtime, "UPDATE analytics.audit_log SET action = 'x.y' WHERE id = %s", entry
        )
    for role in ("authenticated", "service_role"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with runtime.db.as_role(role, {"role": role, "sub": str(uuid.uuid4())}) as conn:
                await conn.execute("SELECT 1 FROM analytics.audit_log LIMIT 1")


async def _redacting(runtime: Runtime, statement: str, entry: int) -> None:
    async with runtime.db.transaction() as conn:
        await conn.execute("SET LOCAL mysetlist.audit_redaction = 'on'")
        await conn.execute(statement, (entry,))  # type: ignore[arg-type]


async def _wait_for_entries(runtime: Runtime, request_id: str) -> list[dict[str, Any]]:
    async def entries() -> list[dict[str, Any]]:
        async with runtime.db.transaction() as conn:
            return await fetch_all_in(
                conn,
                "SELECT action, outcome, request_id, host(ip) AS ip FROM analytics.audit_log"
                " WHERE request_id = %s",
                (request_id,),
            )

    return await until(entries, f"the audit entries of request {request_id}", within=10)


async def test_failed_logins_and_refusals_are_audited_and_counted(
    runtime: Runtime, api_url: str, token_for: Any
) -> None:
    rid_401, rid_403 = f"bad-token-{uuid.uuid4().hex}", f"refused-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=api_url) as client:
        bad = await client.get(
            "/api/privacy/audit",
            headers={"Authorization": "Bearer not.a.token", "X-Request-ID": rid_401},
        )
        refused = await client.get(
            "/api/privacy/audit",
            headers={
                "Authorization": f"Bearer {token_for(uuid.uuid4())}",
                "X-Request-ID": rid_403,
            },
        )
        assert (bad.status_code, refused.status_code) == (401, 403)
        assert "Traceback" not in bad.text
        assert await _wait_for_entries(runtime, rid_401) == [
            {"action": "security.auth_failed", "outcome": "denied", "request_id": rid_401,
             "ip": "127.0.0.1"}
        ]  # fmt: skip
        assert [e["action"] for e in await _wait_for_entries(runtime, rid_403)] == [
            "security.forbidden"
        ]
        operator = {"Authorization": f"Bearer {token_for(uuid.uuid4(), admin=True)}"}
        listed = await client.get(
            "/api/privacy/audit", params={"action": "security.forbidden"}, headers=operator
        )
        assert listed.status_code == 200
        entries = listed.json()["entries"]
        assert entries
        assert {e["action"] for e in entries} == {"security.forbidden"}
        assert rid_403 in {e["request_id"] for e in entries}
        invalid = await client.get(
            "/api/privacy/audit", params={"action": "DROP TABLE"}, headers=operator
        )
        assert invalid.status_code == 422
        metrics = await client.get("/metrics")
    assert 'mysetlist_security_events_total{kind="auth_failed",source="privacy"}' in metrics.text
    assert 'mysetlist_security_events_total{kind="forbidden",source="privacy"}' in metrics.text


async def test_preference_changes_and_write_keys_reach_the_audit_trail(
    runtime: Runtime, api_url: str, token_for: Any
) -> None:
    user = str(uuid.uuid4())
    async with runtime.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO app.users (id, display_name) VALUES (%s, 'Audited Fan')", (user,)
        )
    rid = f"prefs-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=api_url) as client:
        changed = await client.put(
            "/api/notifications/preferences",
            json={"timezone": "Europe/Oslo"},
            headers={"Authorization": f"Bearer {token_for(user)}", "X-Request-ID": rid},
        )
    assert changed.status_code == 200, changed.text
    async with runtime.db.transaction() as conn:
        rows = await fetch_all_in(
            conn,
            "SELECT action, actor_id::text, target_id, host(ip) AS ip FROM analytics.audit_log"
            " WHERE request_id = %s",
            (rid,),
        )
    assert rows == [
        {"action": "notify.preferences_change", "actor_id": user, "target_id": user,
         "ip": "127.0.0.1"}
    ]  # fmt: skip

    from mysetlist.tracking.write_keys import create_key

    with psycopg.connect(runtime.database_url) as sync_conn:
        key_id, key = create_key(sync_conn, "audited source", "browser")
        entry = sync_conn.execute(
            "SELECT details FROM analytics.audit_log WHERE action = 'tracking.write_key_create'"
            " AND target_id = %s",
            (str(key_id),),
        ).fetchone()
    assert entry is not None
    assert entry[0]["prefix"] == key[:12]
    assert key not in str(entry[0])  # the key itself is never recorded


async def test_a_flood_of_failed_logins_raises_the_alert(runtime: Runtime, api_url: str) -> None:
    from mysetlist.privacy.config import load_privacy_settings

    threshold = load_privacy_settings().security_alert_per_minute
    # A client of its own (all of 127/8 is loopback): the API counts a minute of failures
    # per client in its process, which earlier test modules' 401s from 127.0.0.1 fill too.
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=api_url, transport=transport) as client:
        for _ in range(threshold + 5):
            response = await client.get(
                "/api/privacy/export", headers={"Authorization": "Bearer forged.token.here"}
            )
            assert response.status_code == 401
        metrics = await client.get("/metrics")
    assert 'mysetlist_security_alert{kind="auth_failed"} 1.0' in metrics.text

    async def alerts_raised() -> list[dict[str, Any]]:
        async with runtime.db.transaction() as conn:
            return await fetch_all_in(
                conn,
                "SELECT details FROM analytics.audit_log WHERE action = 'security.alert'"
                " AND details->>'kind' = 'auth_failed' AND ip = %s",
                (address,),
            )

    alerts = await until(alerts_raised, "a security.alert audit entry", within=10)
    # once per crossing of the threshold, not for each failure after it
    assert [a["details"]["per_minute"] for a in alerts] == [threshold]
