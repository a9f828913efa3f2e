"""GET/PUT /api/notifications/preferences: the matrix, defaults from the feature flags,
validation naming the field (and writing nothing), RLS."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.db


async def test_defaults_follow_the_feature_flags(
    api_url: str, token_for: Any, make_users: Any
) -> None:
    (user,) = await make_users(1, timezone="Europe/Berlin")
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.get("/api/notifications/preferences",
                        headers={"Authorization": f"Bearer {token_for(user.id)}"})  # fmt: skip
    assert r.status_code == 200
    prefs = r.json()
    assert prefs["channels"]["show_reminders"] == {"email": True, "push": False, "in_app": True}
    assert prefs["channels"]["marketing"]["email"] is False  # opt-in
    assert prefs["channels"]["security"]["email"] is True
    assert prefs["timezone"] == "Europe/Berlin"
    assert prefs["quietHours"] is None
    assert prefs["muted"] is False
    assert set(prefs["digest"].values()) == {"immediate"}


async def test_put_changes_the_given_fields_and_bad_ones_are_named(
    api_url: str, token_for: Any, make_users: Any
) -> None:
    (user,) = await make_users(1)
    headers = {"Authorization": f"Bearer {token_for(user.id)}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers) as c:
        r = await c.put("/api/notifications/preferences", json={
            "channels": {"new_shows": {"email": False}},
            "digest": {"artist_updates": "weekly"},
            "quietHours": {"start": "22:00", "end": "07:30"},
            "timezone": "America/New_York",
        })  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["channels"]["new_shows"]["email"] is False
        assert r.json()["quietHours"] == {"start": "22:00", "end": "07:30"}

        cases: list[tuple[dict[str, Any], str]] = [
            ({"channels": {"security": {"email": False}}}, "channels.security.email"),
            ({"channels": {"nope": {"email": False}}}, "channels.nope"),
            ({"channels": {"new_shows": {"fax": True}}}, "channels.new_shows.fax"),
            ({"digest": {"new_shows": "hourly"}}, "digest.new_shows"),
            ({"digest": {"account": "weekly"}}, "digest.account"),
            ({"quietHours": {"start": "25:00", "end": "07:00"}}, "quietHours.start"),
            ({"timezone": "Mars/Olympus"}, "timezone"),
            ({"muted": "yes"}, "muted"),
            ({"muted": None}, "muted"),  # leave a field out to keep it; null is no value
            ({"channels": {"new_shows": {"email": None}}}, "channels.new_shows.email"),
            ({"quietHours": {"start": "22:00", "end": "22:00"}}, "quietHours.end"),
            ({"colour": "blue"}, "colour"),
        ]
        for body, field in cases:
            # a valid change beside the bad one: nothing of the body may be stored
            bad = await c.put("/api/notifications/preferences", json={**body, "muted": True}
                              if "muted" not in body else body)  # fmt: skip
            assert bad.status_code == 422, (body, bad.text)
            assert bad.headers["content-type"] == "application/problem+json"
            assert field in [e["field"] for e in bad.json()["errors"]], bad.json()
        after = (await c.get("/api/notifications/preferences")).json()
        assert after["muted"] is False
        assert after["timezone"] == "America/New_York"
        assert after["digest"]["artist_updates"] == "weekly"
    async with httpx.AsyncClient(base_url=api_url) as anonymous:
        assert (await anonymous.get("/api/notifications/preferences")).status_code == 401


async def test_a_service_token_reads_and_writes_its_own_user_as_the_service_role(
    api_url: str, token_for: Any, make_users: Any
) -> None:
    # Run as the token's own role (service_role), not forced into `authenticated`: the role
    # needs its own privileges on the tables (migration 0006), else this is a 500.
    owner, other = await make_users(2)
    service = {"Authorization": f"Bearer {token_for(owner.id, role='service_role')}"}
    fan = {"Authorization": f"Bearer {token_for(other.id)}"}
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.put("/api/notifications/preferences", headers=service, json={"muted": True})
        assert r.status_code == 200, r.text
        assert (await c.get("/api/notifications/preferences", headers=service)).json()["muted"]
        # service_role bypasses RLS: the statements themselves keep to the token's user
        assert (await c.get("/api/notifications/preferences", headers=fan)).json()["muted"] is False
        inbox = await c.get("/api/notifications", headers=service)
        assert inbox.status_code == 200, inbox.text
        nobody = {"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"}
        missing = await c.get("/api/notifications/preferences", headers=nobody)
        assert missing.status_code == 404
        assert missing.json()["detail"] == "no profile for this user"
