"""JWT verification with Supabase-style claims, and the FastAPI dependencies built on it.

`sub` is the user id, `role` is `authenticated` or `service_role`, and
`app_metadata.admin = true` marks an operator. HS256 tokens are checked against
`JWT_SECRET`; RS256/ES256 tokens against the keys at `JWT_JWKS_URL`. `alg: none` is never
accepted because the allowed algorithms are fixed per key source.

Every token must carry `aud` = `JWT_AUDIENCE` (default `authenticated`, Supabase's audience
for user sessions), so a token the same issuer minted for another service is refused.
`service_role` tokens too: Supabase's own service key has neither `aud` nor a user `sub`, so
it was never accepted here (we need a `sub`); exempting the most powerful role from the
audience check would only widen what a stray token of that issuer can do. Operator tokens
come from `mint_token` (`mysetlist token --role service_role`), which sets `aud`.

`sub` must be a UUID in its canonical form (`8-4-4-4-12` hex; `urn:uuid:…`, braces or bare
hex are refused with 401: they would reach the database as text it cannot cast). A token of
a user whose tokens were revoked after its `iat` is refused (core/token_revocation.py), and
every failed check counts toward the per-client auth-failure limit (core/auth_failures.py).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from mysetlist.core.auth_failures import AuthFailureLimiter, client_address
from mysetlist.core.config import Settings
from mysetlist.core.db import mark_caller_request, unmark_caller_request
from mysetlist.core.errors import Problem
from mysetlist.core.token_revocation import TokenRevocations

ROLES = ("authenticated", "service_role")
_ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
_CANONICAL_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)


@dataclass(frozen=True)
class Claims:
    user_id: str
    role: str
    is_admin: bool
    raw: dict[str, Any] = field(repr=False)

    @property
    def is_operator(self) -> bool:
        return self.is_admin or self.role == "service_role"


class AuthError(Problem):
    def __init__(self, detail: str) -> None:
        super().__init__(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


class TokenVerifier:
    def __init__(self, settings: Settings, revocations: TokenRevocations | None = None) -> None:
        self._secret = settings.effective_jwt_secret
        self._audience = settings.jwt_audience
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url) if settings.jwt_jwks_url else None
        self.revocations = revocations

    @property
    def uses_network(self) -> bool:
        return self._jwks is not None

    def verify(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise AuthError(f"malformed token: {exc}") from None
        alg = header.get("alg")
        options: jwt.types.Options = {"require": ["exp", "sub", "aud"], "verify_aud": True}
        try:
            if alg == "HS256":
                payload = jwt.decode(
                    token, self._secret, algorithms=["HS256"],
                    audience=self._audience, options=options, leeway=5,
                )  # fmt: skip
            elif alg in _ASYMMETRIC and self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token)
                payload = jwt.decode(
                    token, key, algorithms=_ASYMMETRIC,
                    audience=self._audience, options=options, leeway=5,
                )  # fmt: skip
            else:
                raise AuthError(f"token algorithm {alg!r} is not accepted")
        except jwt.ExpiredSignatureError:
            raise AuthError("token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("token is not valid yet") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature does not verify") from None
        except jwt.InvalidAudienceError:
            raise AuthError(f"token audience (aud) is not {self._audience!r}") from None
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"no key to verify the token: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        claims = claims_from_payload(payload)
        if self.revocations is not None:
            issued_at = payload.get("iat")
            if self.revocations.is_revoked(
                claims.user_id, float(issued_at) if isinstance(issued_at, int | float) else None
            ):
                raise AuthError("token has been revoked")
        return claims


def claims_from_payload(payload: dict[str, Any]) -> Claims:
    role = payload.get("role", "authenticated")
    if role not in ROLES:
        raise AuthError(f"role {role!r} is not accepted")
    sub = payload.get("sub")
    if not isinstance(sub, str) or not _CANONICAL_UUID.fullmatch(sub):
        raise AuthError("sub must be a user id (a uuid: 8-4-4-4-12 hex digits)")
    sub = sub.lower()
    app_metadata = payload.get("app_metadata") or {}
    is_admin = isinstance(app_metadata, dict) and app_metadata.get("admin") is True
    return Claims(user_id=sub, role=role, is_admin=is_admin, raw=payload)


def mint_token(
    settings: Settings,
    user_id: str,
    *,
    role: str = "authenticated",
    admin: bool = False,
    ttl_seconds: int = 3600,
) -> str:
    """An HS256 token as the platform's app would issue it (for development and tests)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": str(uuid.UUID(str(user_id))),
        "role": role,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "app_metadata": {"admin": admin},
    }
    return jwt.encode(payload, settings.effective_jwt_secret, algorithm="HS256")


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header must be 'Bearer <token>'")
    return token.strip()


# The dependencies are `async def` on purpose: FastAPI runs plain functions in a thread pool,
# and that hop cost more than verifying an HS256 token (profiled on the ingest path).
async def optional_claims(request: Request) -> Claims | None:
    if not request.headers.get("authorization"):
        return None
    runtime = getattr(request.app.state, "runtime", None)
    limiter: AuthFailureLimiter | None = getattr(runtime, "auth_failures", None)
    client = client_address(request)
    if limiter is not None:
        limiter.raise_if_blocked(client)  # in memory: no round trip for good callers
    verifier: TokenVerifier = request.app.state.verifier
    try:
        token = _bearer(request) or ""
        if verifier.uses_network:
            # A JWKS cache miss fetches keys over HTTP: keep that off the event loop.
            claims = await asyncio.to_thread(verifier.verify, token)
        else:
            claims = verifier.verify(token)
    except AuthError:
        if limiter is not None:
            await limiter.failed(client)  # a 429 instead once the client is over its limit
        raise
    # From here on the request is user-facing: what it reads of the database goes through
    # `as_caller` (under RLS), or names its owner work with `as_owner` (core/db.py).
    mark_caller_request(claims.user_id, claims.role)
    return claims


async def required_claims(
    claims: Annotated[Claims | None, Depends(optional_claims)],
) -> Claims:
    if claims is None:
        raise AuthError("a bearer token is required")
    return claims


async def operator_claims(claims: Annotated[Claims, Depends(required_claims)]) -> Claims:
    if not claims.is_operator:
        raise Problem(403, "Forbidden", "operators only")
    unmark_caller_request()  # an operator-only route: its owner work is what it is for
    return claims


OptionalUser = Annotated[Claims | None, Depends(optional_claims)]
CurrentUser = Annotated[Claims, Depends(required_claims)]
Operator = Annotated[Claims, Depends(operator_claims)]
