"""Attack: a validly signed token whose `sub` is a uuid in another spelling (`urn:uuid:…`,
braces, bare hex) passed Python's uuid check and reached the database as text it cannot
cast: a 5xx (issue 15, item 11). Only the canonical 8-4-4-4-12 form is a user id now (any
case, normalised to lower case); everything else is a 401."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from mysetlist.core.config import Settings

pytestmark = pytest.mark.db
# A fixed id: the parameters below name the tests, which must be the same in every
# pytest-xdist worker.
USER = uuid.UUID("3f6c2a9e-8b1d-4c7e-a5f0-2d9e8b7c6a51")
ODD_SUBS: list[Any] = [
    f"urn:uuid:{USER}",
    f"{{{USER}}}",
    USER.hex,
    f" {USER}",
    f"{USER}\n",
    f"{USER}\x00",
    str(USER).replace("-", "", 1),
    str(USER) + "0",
    12345,
    "",
    "anon_1",
]
ROUTES = [
    ("GET", "/api/me"),
    ("GET", "/api/me/follows"),
    ("GET", "/api/analytics/events"),
    ("POST", "/api/analytics/events"),
    ("GET", "/api/privacy/export"),
    ("GET", "/api/notifications"),
    ("GET", "/api/analytics/dashboard"),
]


def signed(settings: Settings, sub: Any, **extra: Any) -> str:
    now = int(time.time())
    payload = {
        "sub": sub,
        "role": "authenticated",
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + 600,
        **extra,
    }
    return jwt.encode(payload, settings.effective_jwt_secret, algorithm="HS256")


@pytest.mark.parametrize("sub", ODD_SUBS, ids=repr)
def test_a_sub_that_is_not_a_canonical_uuid_is_a_401(
    api_url: str, settings: Settings, sub: Any
) -> None:
    headers = {"Authorization": "Bearer " + signed(settings, sub)}
    with httpx.Client(base_url=api_url, timeout=30) as client:
        for method, path in ROUTES:
            body = {"event_type": "page_view"} if method == "POST" else None
            r = client.request(method, path, headers=headers, json=body)
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"


def test_an_upper_case_sub_is_the_same_user(api_url: str, settings: Settings) -> None:
    user = str(uuid.uuid4())
    marker = "/" + uuid.uuid4().hex
    upper = {"Authorization": "Bearer " + signed(settings, user.upper())}
    lower = {"Authorization": "Bearer " + signed(settings, user)}
    with httpx.Client(base_url=api_url, timeout=30) as client:
        r = client.post(
            "/api/analytics/events",
            headers=upper,
            json={"event_type": "page_view", "page_url": marker},
        )
        assert r.status_code == 202, r.text
        r = client.get("/api/analytics/events", headers=lower)
    assert r.status_code == 200, r.text
    assert marker in r.text
