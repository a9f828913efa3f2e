"""Attack family: a time zone one side knows and the other does not (issue 15, item 2).

`PUT /api/notifications/preferences {"timezone": "localtime"}` was accepted (Python knew
the zone, the demo's PostgreSQL did not), and every drain touching that fan then failed in
SQL: other users' mail, security mail included, stayed queued. Whether a given PostgreSQL
knows "localtime" depends on its tz database, so the attack is also repeated with a zone
this test makes known to Python only (a zone file on Python's search path)."""

from __future__ import annotations

import shutil
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mysetlist.core.errors import DomainError, status_of
from mysetlist.core.runtime import Runtime
from mysetlist.core.time_zones import load_time_zones
from mysetlist.dashboard.panels import window
from tests.notify import conftest as notify_fixtures
from tests.notify.conftest import SmtpSink
from tests.security.notify_support import send

pytestmark = pytest.mark.db
smtp_sink = notify_fixtures.smtp_sink
make_users = notify_fixtures.make_users
deliverer = notify_fixtures.deliverer
PYTHON_ONLY = "Mars/Olympus"


@pytest.fixture
def python_only_zone(tmp_path: Path) -> Iterator[str]:
    """A zone Python's zoneinfo knows (a copy of UTC on its search path) and PostgreSQL
    does not: the shape of "localtime" on the demo's database."""
    (tmp_path / "Mars").mkdir()
    shutil.copy(Path(zoneinfo.TZPATH[0]) / "UTC", tmp_path / PYTHON_ONLY)
    before = zoneinfo.TZPATH
    zoneinfo.reset_tzpath(to=[str(tmp_path), *before])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        assert PYTHON_ONLY in zoneinfo.available_timezones()
        zoneinfo.ZoneInfo(PYTHON_ONLY)
        yield PYTHON_ONLY
    finally:
        zoneinfo.reset_tzpath(to=before)
        zoneinfo.ZoneInfo.clear_cache()


async def _postgres_knows(runtime: Runtime, zone: str) -> bool:
    row = await runtime.db.fetch_one(
        "SELECT count(*) AS n FROM pg_timezone_names WHERE name = %s", (zone,)
    )
    return row is not None and row["n"] == 1


@pytest.mark.parametrize("zone", ["localtime", PYTHON_ONLY, "Europe/Berlin\u0000"])
async def test_a_zone_the_database_does_not_know_is_refused_and_delivery_goes_on(
    zone: str, python_only_zone: str, api_url: str, token_for: Any, make_users: Any,
    runtime: Runtime, deliverer: Any, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    attacker, victim = await make_users(2)
    both_know = "\u0000" not in zone and await _postgres_knows(runtime, zone)
    async with httpx.AsyncClient(
        base_url=api_url, headers={"Authorization": f"Bearer {token_for(attacker.id)}"}
    ) as c:
        r = await c.put("/api/notifications/preferences", json={"timezone": zone})
        assert r.status_code == (200 if both_know else 422), r.text
        if not both_know:
            assert r.json()["errors"][0]["field"] == "timezone"
            assert (await c.get("/api/notifications/preferences")).json()["timezone"] == "UTC"
    for body in (
        {"userIds": [attacker.id, victim.id], "type": "followed_artist_update", "title": "t",
         "message": "m", "variables": {"artist_name": "A", "artist_id": 1},
         "channels": ["email"]},
        {"userId": victim.id, "type": "security_alert", "title": "New sign-in",
         "message": "A new sign-in", "channels": ["email"]},
    ):  # fmt: skip
        assert (await send(api_url, token_for, body)).status_code == 202
    await deliverer.drain(runtime.db)
    assert len(smtp_sink.to(victim.email)) == 2
    assert len(smtp_sink.to(attacker.email)) == 1


async def test_the_dashboard_takes_only_zones_both_sides_know(
    python_only_zone: str, runtime: Runtime
) -> None:
    await load_time_zones(runtime.db)
    assert window("24h", "Europe/Berlin").tz == "Europe/Berlin"
    for zone in (python_only_zone, "Europe/Berlin\u0000", "../../etc/passwd"):
        with pytest.raises(DomainError) as refused:
            window("24h", zone)
        assert status_of(refused.value) == 422
