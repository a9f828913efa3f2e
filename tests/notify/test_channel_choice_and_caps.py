"""Channel choice (preferences, reachability, engagement), the per-day frequency cap, and
the daily analytics rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from mysetlist.core.auth import claims_from_payload
from mysetlist.core.runtime import Runtime
from mysetlist.notify.catalog import TYPES
from mysetlist.notify.delivery import analytics, sending
from mysetlist.notify.delivery.drain import Deliverer
from mysetlist.notify.preferences.model import from_row, next_local_midnight
from tests.notify.conftest import SmtpSink, notify_settings

SERVICE = claims_from_payload({"sub": str(uuid.uuid4()), "role": "service_role"})
REACHABLE = {"email_verified": True, "suppressed": False, "has_push": True,
             "recently_active": True}  # fmt: skip


def test_best_routing_picks_the_channel_this_user_engages_with() -> None:
    settings = notify_settings(1025, FEATURE_PUSH_NOTIFICATIONS="true")
    prefs = from_row(None, settings, "UTC")
    reminder = TYPES["show_reminder"]  # push, email, in_app; one of them
    assert sending.choose_channels(reminder, None, prefs, REACHABLE, {}) == ["push"]
    opens_email = {"email": 0.6, "push": 0.1, "in_app": 0.2}
    assert sending.choose_channels(reminder, None, prefs, REACHABLE, opens_email) == ["email"]
    no_push = {**REACHABLE, "has_push": False}
    assert sending.choose_channels(reminder, None, prefs, no_push, {"in_app": 0.3}) == ["in_app"]
    away = {**no_push, "recently_active": False}
    assert sending.choose_channels(reminder, None, prefs, away, {"in_app": 0.9}) == ["email"]
    # forced channels: all of them that preferences allow and the user can receive
    forced = sending.choose_channels(reminder, ["email", "in_app"], prefs, away, {})
    assert forced == ["email", "in_app"]


def test_preferences_and_reachability_remove_channels_but_not_from_transactional() -> None:
    settings = notify_settings(1025)
    row = {"channels": {"vote_results": {"email": False}}, "digest": {}, "muted": False}
    prefs = from_row(row, settings, "UTC")
    summary = TYPES["vote_summary"]
    assert sending.choose_channels(summary, None, prefs, REACHABLE, {}) == ["in_app"]
    muted = from_row({**row, "muted": True}, settings, "UTC")
    assert sending.choose_channels(summary, None, muted, REACHABLE, {}) == []
    security = TYPES["security_alert"]
    assert sending.choose_channels(security, None, muted, REACHABLE, {}) == ["email", "in_app"]
    suppressed = {**REACHABLE, "suppressed": True}
    assert sending.choose_channels(security, None, muted, suppressed, {}) == ["in_app"]


@pytest.mark.db
async def test_the_daily_cap_defers_product_email_to_the_users_next_day(
    make_users: Any, runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    (user,) = await make_users(1, timezone="Australia/Sydney")
    settings = notify_settings(smtp_sink.port, NOTIFY_FREQUENCY_CAP_PER_DAY=2)
    capped = Deliverer.build(
        settings, runtime.cipher, runtime.settings.effective_encryption_key, runtime.redis_url
    )
    try:
        for n, type_ in enumerate(["vote_activity"] * 3 + ["account_notice"]):
            request = sending.SendRequest.model_validate({
                "userId": user.id, "type": type_, "title": f"{type_} {n}", "message": "m",
                "channels": ["email"]})  # fmt: skip
            await sending.send(runtime.db, settings, SERVICE, request, idempotency_key=None)
            await capped.drain(runtime.db)
    finally:
        await capped.close()
    subjects = [m["Subject"] for m in smtp_sink.to(user.email)]
    assert subjects == ["vote_activity 0", "vote_activity 1", "account_notice 3"]
    deferred = await runtime.db.fetch_one(
        """SELECT status, defer_reason, next_attempt_at FROM notify.notification_delivery
           WHERE user_id = %s AND status = 'deferred'""",
        (user.id,),
    )
    assert deferred is not None
    assert deferred["defer_reason"] == "frequency_cap"
    expected = next_local_midnight("Australia/Sydney", datetime.now(UTC))
    assert abs((deferred["next_attempt_at"] - expected).total_seconds()) < 60

    # The module's database holds only this test's sends: one row per (type, channel).
    written = await analytics.refresh_daily(runtime.db, since=datetime.now(UTC).date())
    assert written == 2
    row = await runtime.db.fetch_one(
        """SELECT sent, deferred FROM notify.notification_analytics
           WHERE day = %s AND type = 'vote_activity' AND channel = 'email'""",
        (datetime.now(UTC).date(),),
    )
    assert row is not None
    assert (row["sent"], row["deferred"]) == (2, 1)
