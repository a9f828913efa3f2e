"""Every kind of bad token gets 401 with a problem+json body; good ones pass."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from mysetlist.platform import service

from ..conftest import TEST_JWT_SECRET

pytestmark = pytest.mark.db


def _token(payload: dict[str, Any], key: Any = TEST_JWT_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=alg)


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": str(uuid.uuid4()), "role": "authenticated", "aud": "authenticated",
        "iat": now, "exp": now + 600, **over,
    }  # fmt: skip


def _without(claims: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k != name}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(payload: dict[str, Any]) -> str:
    header = _b64(orjson.dumps({"alg": "none", "typ": "JWT"}))
    return f"{header}.{_b64(orjson.dumps(payload))}."


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "expired": lambda: _token(_claims(exp=int(time.time()) - 120)),
    "not yet valid": lambda: _token(_claims(nbf=int(time.time()) + 600)),
    "wrong key": lambda: _token(_claims(), key="another-secret-" + "y" * 40),
    "alg none": lambda: _unsigned(_claims()),
    "malformed": lambda: "not.a.jwt",
    "garbage": lambda: "abc",
    "rsa key not configured": lambda: _token(
        _claims(), key=rsa.generate_private_key(public_exponent=65537, key_size=2048), alg="RS256"
    ),
    "unknown role": lambda: _token(_claims(role="superuser")),
    "sub not a uuid": lambda: _token(_claims(sub="123")),
    "no exp": lambda: _token(_without(_claims(), "exp")),
    # the audience is checked by default (Supabase's `authenticated`), service_role included
    "no aud": lambda: _token(_without(_claims(), "aud")),
    "another service's aud": lambda: _token(_claims(aud="billing-service")),
    "service_role without aud": lambda: _token(_without(_claims(role="service_role"), "aud")),
    "service_role, another aud": lambda: _token(_claims(role="service_role", aud="anon")),
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_bad_token_gets_401_problem(api_url: str, kind: str) -> None:
    response = httpx.get(
        f"{api_url}/api/me", headers={"Authorization": f"Bearer {BAD_TOKENS[kind]()}"}
    )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    assert body["detail"]


def test_missing_and_non_bearer_header(api_url: str) -> None:
    assert httpx.get(f"{api_url}/api/me").status_code == 401
    r = httpx.get(f"{api_url}/api/me", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert r.status_code == 401
    assert "Bearer" in r.json()["detail"]


async def test_valid_token_reads_own_profile(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    async with runtime.db.transaction() as conn:
        uid = await service.create_user(
            conn, runtime.cipher, display_name="Dee", timezone="Europe/Oslo"
        )
    async with httpx.AsyncClient() as client:
        r = await client.get(
            f"{api_url}/api/me", headers={"Authorization": f"Bearer {token_for(uid)}"}
        )
    assert r.status_code == 200, r.text
    assert r.json()["id"] == uid
    assert r.json()["timezone"] == "Europe/Oslo"


def test_admin_flag_from_app_metadata(settings: Settings) -> None:
    from mysetlist.core.auth import TokenVerifier

    verifier = TokenVerifier(settings)
    admin = verifier.verify(_token(_claims(app_metadata={"admin": True})))
    plain = verifier.verify(_token(_claims(app_metadata={"admin": "yes"})))
    service_role = verifier.verify(_token(_claims(role="service_role")))
    assert admin.is_admin
    assert admin.is_operator
    assert not plain.is_admin
    assert not plain.is_operator
    assert service_role.is_operator
    assert not service_role.is_admin


def test_rs256_through_jwks(settings: Settings) -> None:
    """RS256 tokens verify against a JWKS served over real HTTP."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from mysetlist.core.auth import AuthError, TokenVerifier

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", use="sig", alg="RS256")
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        jwks_settings = settings.model_copy(
            update={"jwt_jwks_url": f"http://127.0.0.1:{server.server_port}/jwks.json"}
        )
        verifier = TokenVerifier(jwks_settings)
        good = jwt.encode(_claims(), key, algorithm="RS256", headers={"kid": "k1"})
        assert verifier.verify(good).role == "authenticated"
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(_claims(), other, algorithm="RS256", headers={"kid": "k1"})
        with pytest.raises(AuthError):
            verifier.verify(forged)
    finally:
        server.shutdown()


def test_minted_tokens_carry_the_audience_and_verify(settings: Settings) -> None:
    from mysetlist.core.auth import TokenVerifier, mint_token

    verifier = TokenVerifier(settings)
    for role in ("authenticated", "service_role"):
        token = mint_token(settings, str(uuid.uuid4()), role=role)
        assert jwt.decode(token, options={"verify_signature": False})["aud"] == "authenticated"
        assert verifier.verify(token).role == role
    # an audience as a list (RFC 7519 allows it) passes when it names ours
    assert verifier.verify(_token(_claims(aud=["other", "authenticated"]))).user_id


def test_jwt_audience_overrides_the_default(settings: Settings) -> None:
    from mysetlist.core.auth import AuthError, TokenVerifier, mint_token

    ours = settings.model_copy(update={"jwt_audience": "mysetlist-api"})
    verifier = TokenVerifier(ours)
    assert verifier.verify(_token(_claims(aud="mysetlist-api"))).role == "authenticated"
    assert verifier.verify(mint_token(ours, str(uuid.uuid4()), role="service_role")).is_operator
    with pytest.raises(AuthError, match="mysetlist-api"):
        verifier.verify(_token(_claims()))  # aud=authenticated is not ours any more


def test_jwt_audience_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from mysetlist.core.config import load_settings

    monkeypatch.delenv("JWT_AUDIENCE", raising=False)
    assert load_settings().jwt_audience == "authenticated"
    monkeypatch.setenv("JWT_AUDIENCE", "mysetlist-api")
    assert load_settings().jwt_audience == "mysetlist-api"
