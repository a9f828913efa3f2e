"""Quiet hours defer (never drop) across DST changes, weekly digests fold a week into one
email, mute spares transactional mail. The clock is passed in (`now`) to stand on the
nights the clocks change; everything else is the real pipeline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mysetlist.core.auth import claims_from_payload
from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery import digests, sending
from mysetlist.notify.delivery.drain import Deliverer
from tests.notify.conftest import SmtpSink, body_of

pytestmark = pytest.mark.db

SERVICE = claims_from_payload({"sub": str(uuid.uuid4()), "role": "service_role"})


async def _set_preferences(api_url: str, token: str, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.put("/api/notifications/preferences", json=body,
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert r.status_code == 200, r.text


async def _email_rows(runtime: Runtime, user_id: str) -> list[dict[str, Any]]:
    return await runtime.db.fetch_all(
        "SELECT * FROM notify.notification_delivery WHERE user_id = %s AND channel = 'email'",
        (user_id,),
    )


@pytest.mark.parametrize(
    ("sent_at_utc", "quiet_ends_utc"),
    [
        # 23:00 EST on Sat 7 March 2026; clocks go forward at 02:00: 07:00 EDT = 11:00 UTC
        (datetime(2026, 3, 8, 4, 0, tzinfo=UTC), datetime(2026, 3, 8, 11, 0, tzinfo=UTC)),
        # 23:00 EDT on Sat 31 October 2026; clocks go back at 02:00: 07:00 EST = 12:00 UTC
        (datetime(2026, 11, 1, 3, 0, tzinfo=UTC), datetime(2026, 11, 1, 12, 0, tzinfo=UTC)),
    ],
    ids=["spring-forward", "fall-back"],
)
async def test_quiet_hours_defer_to_their_end_in_the_users_zone_across_dst(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
    sent_at_utc: datetime, quiet_ends_utc: datetime,
) -> None:  # fmt: skip
    (user,) = await make_users(1, timezone="America/New_York")
    await _set_preferences(
        api_url, token_for(user.id), {"quietHours": {"start": "22:00", "end": "07:00"}}
    )
    request = sending.SendRequest.model_validate({
        "userId": user.id, "type": "vote_activity", "title": "Votes are in",
        "message": "see the results", "channels": ["email"]})  # fmt: skip
    result, _ = await sending.send(
        runtime.db, deliverer.settings, SERVICE, request, idempotency_key=None, now=sent_at_utc
    )
    assert result["deferred"] == 1
    (row,) = await _email_rows(runtime, user.id)
    assert (row["status"], row["defer_reason"]) == ("deferred", "quiet_hours")
    assert row["next_attempt_at"] == quiet_ends_utc

    await deliverer.drain(runtime.db, now=quiet_ends_utc - timedelta(minutes=1))
    assert smtp_sink.to(user.email) == []  # still night in New York
    await deliverer.drain(runtime.db, now=quiet_ends_utc)
    assert len(smtp_sink.to(user.email)) == 1  # deferred, never dropped
    (row,) = await _email_rows(runtime, user.id)
    assert row["status"] == "sent"


async def test_transactional_mail_ignores_quiet_hours_and_mute(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    (user,) = await make_users(1, timezone="Asia/Tokyo")
    await _set_preferences(
        api_url, token_for(user.id),
        {"muted": True, "quietHours": {"start": "00:00", "end": "23:59"}},
    )  # fmt: skip
    now = datetime.now(UTC)
    for type_ in ("security_alert", "vote_activity"):
        request = sending.SendRequest.model_validate(
            {"userId": user.id, "type": type_, "title": type_, "message": "m",
             "channels": ["email"]})  # fmt: skip
        await sending.send(
            runtime.db, deliverer.settings, SERVICE, request, idempotency_key=None, now=now
        )
    await deliverer.drain(runtime.db, now=now)
    assert [m["Subject"] for m in smtp_sink.to(user.email)] == ["security_alert"]


async def test_a_weekly_digest_is_one_email_for_a_week_without_what_was_read_in_app(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    (user,) = await make_users(1, timezone="Europe/Berlin")
    await _set_preferences(api_url, token_for(user.id), {"digest": {"artist_updates": "weekly"}})
    monday = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # a Monday, 10:00 in Berlin
    for day in range(6):
        request = sending.SendRequest.model_validate({
            "userId": user.id, "type": "followed_artist_update", "title": f"Update {day}",
            "message": f"news {day}", "data": {"artistId": day + 1},
            "variables": {"artist_name": f"Band {day}", "artist_id": day + 1}})  # fmt: skip
        result, _ = await sending.send(
            runtime.db, deliverer.settings, SERVICE, request, idempotency_key=None,
            now=monday + timedelta(days=day),
        )  # fmt: skip
        assert result["digested"] == 1
        assert result["deliveries"] == {"in_app": 1}  # the inbox now, the email in the digest
    await runtime.db.fetch_all(
        """UPDATE notify.notifications SET read_at = now()
           WHERE user_id = %s AND title = 'Update 2' RETURNING id""",
        (user.id,),
    )
    week_ends = datetime(2026, 6, 7, 22, 0, tzinfo=UTC)  # Monday 8 June 00:00 in Berlin
    assert await digests.send_due_digests(runtime.db, now=week_ends - timedelta(minutes=1)) == 0
    assert await digests.send_due_digests(runtime.db, now=week_ends) == 1
    assert await digests.send_due_digests(runtime.db, now=week_ends + timedelta(days=1)) == 0
    await deliverer.drain(runtime.db, now=week_ends)
    (digest,) = smtp_sink.to(user.email)
    text = body_of(digest, "plain")
    for day in (0, 1, 3, 4, 5):
        assert f"Update {day}" in text
    assert "Update 2" not in text  # already seen in the app
    assert digest["Subject"] == "Your MySetlist week: 5 updates"
