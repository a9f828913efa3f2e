"""The standing attack suite: one test per attack, against the running API (and the
database as the API's roles). Attacks covered by a capability's own tests are listed with
those tests in docs/security.md; the suite here covers what cuts across capabilities."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from typing import Any

import httpx
import jwt
import orjson
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mysetlist.core.config import Settings, load_settings
from mysetlist.core.db import fetch_all_in
from mysetlist.core.runtime import Runtime
from mysetlist.privacy.discovery import personal_columns
from tests.conftest import TEST_JWT_SECRET, serve_app
from tests.privacy.seeding import new_user, seed_catalog, seed_user_everywhere

pytestmark = pytest.mark.db
OPERATOR_ROUTE = "/api/privacy/audit"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()), "role": "authenticated", "aud": settings.jwt_audience,
        "iat": now, "exp": now + 600, "app_metadata": {"admin": True},
    }  # fmt: skip
    claims.update(changes)
    return claims


def _hs256_by_hand(claims: dict[str, Any], key: bytes, header: dict[str, Any]) -> str:
    signing = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
    return f"{signing}.{_b64(hmac.new(key, signing.encode(), hashlib.sha256).digest())}"


def _forgeries(settings: Settings) -> dict[str, str]:
    secret = settings.effective_jwt_secret
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    good = jwt.encode(_claims(settings), secret, algorithm="HS256")
    head, body, signature = good.split(".")
    tampered_body = _b64(orjson.dumps(_claims(settings, sub=str(uuid.uuid4()))))
    return {
        "alg none": f"{_b64(orjson.dumps({'alg': 'none', 'typ': 'JWT'}))}.{body}.",
        "HS/RS confusion (public key as HMAC secret)": _hs256_by_hand(
            _claims(settings), public_pem, {"alg": "HS256", "typ": "JWT"}
        ),
        "RS256 without a JWKS": jwt.encode(_claims(settings), rsa_key, algorithm="RS256"),
        "wrong key": jwt.encode(_claims(settings), "another-secret-" * 4, algorithm="HS256"),
        "expired": jwt.encode(
            _claims(settings, exp=int(time.time()) - 3600), secret, algorithm="HS256"
        ),
        "tampered claims": f"{head}.{tampered_body}.{signature}",
        "escalation to service_role with a wrong key": jwt.encode(
            _claims(settings, role="service_role"), "x" * 48, algorithm="HS256"
        ),
        "escalation to a database superuser role": jwt.encode(
            _claims(settings, role="postgres"), secret, algorithm="HS256"
        ),
        "wrong aud": jwt.encode(
            _claims(settings, aud="another-service"), secret, algorithm="HS256"
        ),
        "no aud": jwt.encode(
            {k: v for k, v in _claims(settings).items() if k != "aud"}, secret, algorithm="HS256"
        ),
        "sub is not a user id": jwt.encode(
            _claims(settings, sub="admin"), secret, algorithm="HS256"
        ),
    }


def test_jwt_forgeries_are_refused(api_url: str, settings: Settings) -> None:
    assert settings.effective_jwt_secret == TEST_JWT_SECRET
    with httpx.Client(base_url=api_url) as client:
        for attack, token in _forgeries(settings).items():
            response = client.get(OPERATOR_ROUTE, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, f"{attack}: {response.status_code}"
            assert response.headers["content-type"] == "application/problem+json", attack
            assert "Traceback" not in response.text


def _per_user_operations(schema: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path, where) of every operation taking a user id in its path or query."""
    out = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            names = {(p["name"], p["in"]) for p in op.get("parameters", [])}
            for where in ("path", "query"):
                if ("user_id", where) in names:
                    out.append((method.upper(), path, where))
    return out


def test_no_per_user_route_serves_another_users_data(api_url: str, token_for: Any) -> None:
    fan, victim = uuid.uuid4(), uuid.uuid4()
    with httpx.Client(base_url=api_url) as client:
        operations = _per_user_operations(client.get("/openapi.json").json())
        assert ("GET", "/api/privacy/users/{user_id}/export", "path") in operations
        assert ("DELETE", "/api/privacy/users/{user_id}", "path") in operations
        for method, path, where in operations:
            url = path.replace("{user_id}", str(victim))
            params = {"user_id": str(victim)} if where == "query" else None
            response = client.request(
                method, url, params=params, headers={"Authorization": f"Bearer {token_for(fan)}"}
            )
            assert response.status_code == 403, f"{method} {path}: {response.status_code}"


async def test_authenticated_sql_reaches_no_other_users_rows(runtime: Runtime) -> None:
    victim, attacker = new_user(runtime.cipher), new_user(runtime.cipher)
    async with runtime.db.transaction() as conn:
        await seed_catalog(conn)
        await seed_user_everywhere(conn, runtime.cipher, victim)
        columns = [c for c in await personal_columns(conn) if c.kind == "user_id"]
    checked = 0
    for col in columns:
        table = f'"{col.schema}"."{col.table}"'
        where = f'"{col.column}"::text = %s'
        for statement in (
            f"SELECT count(*) AS n FROM {table} WHERE {where}",
            f"WITH d AS (DELETE FROM {table} WHERE {where} RETURNING 1)"
            " SELECT count(*) AS n FROM d",
            f'WITH u AS (UPDATE {table} SET "{col.column}" = "{col.column}" WHERE {where}'
            " RETURNING 1) SELECT count(*) AS n FROM u",
        ):
            try:
                async with runtime.db.as_user(attacker.user_id) as conn:
                    rows = await fetch_all_in(conn, statement, (victim.user_id,))  # type: ignore[arg-type]
            except psycopg.errors.InsufficientPrivilege:
                continue  # the role may not touch the table at all
            assert rows == [{"n": 0}], f"{statement}: {rows}"
            checked += 1
    assert checked >= 10  # not vacuous: the per-user tables users may read were tried


def test_html_carries_security_headers_and_json_no_sniffing(api_url: str) -> None:
    with httpx.Client(base_url=api_url) as client:
        docs = client.get("/docs")
        api = client.get("/openapi.json")
    csp = docs.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["x-frame-options"] == "DENY"


def test_cors_answers_only_allowed_origins(
    database_url: str, redis_url: str, settings: Settings
) -> None:
    from mysetlist.api import create_app

    allowed = "https://app.mysetlist.example"
    configured = load_settings(
        **{**settings.model_dump(by_alias=False), "cors_allow_origins": [allowed]}
    )
    with (
        serve_app(create_app(configured, database_url, redis_url)) as url,
        httpx.Client(base_url=url) as client,
    ):
        preflight = {"Access-Control-Request-Method": "GET"}
        ok = client.options("/api/privacy/export", headers={"Origin": allowed, **preflight})
        evil = client.options(
            "/api/privacy/export", headers={"Origin": "https://evil.example", **preflight}
        )
    assert ok.headers.get("access-control-allow-origin") == allowed
    assert "access-control-allow-origin" not in evil.headers


def test_oversized_bodies_are_refused_before_reading(api_url: str, token_for: Any) -> None:
    body = b"{" + b'"a":' * 10 + b"0" * (2 * 1024 * 1024)
    with httpx.Client(base_url=api_url) as client:
        schema = client.get("/openapi.json").json()
        posts = [p for p, item in schema["paths"].items() if "post" in item and "{" not in p]
        assert posts
        for path in posts:
            response = client.post(
                path, content=body,
                headers={"Content-Type": "application/json",
                         "Authorization": f"Bearer {token_for(uuid.uuid4(), admin=True)}"},
            )  # fmt: skip
            assert response.status_code == 413, f"POST {path}: {response.status_code}"
