"""Retention by anonymisation per event type, and the notification log's retention."""

from __future__ import annotations

import uuid

import pytest

from mysetlist.core.db import fetch_all_in, fetch_one_in
from mysetlist.core.runtime import Runtime
from mysetlist.privacy.config import load_privacy_settings
from mysetlist.privacy.retention import anonymise_expired_events, delete_old_notifications

pytestmark = pytest.mark.db


async def test_old_events_of_a_listed_type_lose_their_identity_and_stay(runtime: Runtime) -> None:
    kind = f"probe_{uuid.uuid4().hex[:8]}"  # a type of this test's own
    user = str(uuid.uuid4())
    async with runtime.db.transaction() as conn:
        for age_days, n in ((40, 3), (5, 2)):
            for _ in range(n):
                await conn.execute(
                    "INSERT INTO analytics.user_events (event_id, message_id, user_id,"
                    " anonymous_id, session_id, event_type, page_url, properties, source,"
                    " created_at, received_at) VALUES (gen_random_uuid(), %s, %s, 'anon-r',"
                    " 'sess-r', %s, 'https://x.test/a?email=fan@x.test#f', '{\"q\": 1}', 'own',"
                    " now() - make_interval(days => %s), now())",
                    (f"m-{uuid.uuid4().hex}", user, kind, age_days),
                )
    settings = load_privacy_settings(
        MYSETLIST_ANONYMISE_EVENTS_AFTER=f"{kind}=30", MYSETLIST_PRIVACY_RETENTION_BATCH=2
    )
    assert await anonymise_expired_events(runtime.db, settings) == {kind: 3}
    async with runtime.db.transaction() as conn:
        rows = await fetch_all_in(
            conn,
            "SELECT user_id::text, anonymous_id, session_id, properties, page_url,"
            " created_at < now() - interval '30 days' AS old"
            " FROM analytics.user_events WHERE event_type = %s",
            (kind,),
        )
    assert len(rows) == 5  # kept for aggregates
    old = [r for r in rows if r["old"]]
    assert old == [
        {"user_id": None, "anonymous_id": None, "session_id": None, "properties": {},
         "page_url": "https://x.test/a", "old": True}
    ] * 3  # fmt: skip
    assert all(r["user_id"] == user for r in rows if not r["old"])
    assert await anonymise_expired_events(runtime.db, settings) == {kind: 0}  # idempotent


async def test_notifications_past_retention_go_with_their_deliveries(runtime: Runtime) -> None:
    user = str(uuid.uuid4())
    async with runtime.db.transaction() as conn:
        await conn.execute("INSERT INTO app.users (id, display_name) VALUES (%s, 'R')", (user,))
        for age_days in (4000, 1):
            await conn.execute(
                "WITH n AS (INSERT INTO notify.notifications (user_id, type, category, title,"
                " message, created_at) VALUES (%s, 'probe', 'marketing', 't', 'm',"
                " now() - make_interval(days => %s)) RETURNING id)"
                " INSERT INTO notify.notification_delivery (notification_id, user_id, channel,"
                " recipient, status) SELECT id, %s, 'in_app', 'inbox', 'sent' FROM n",
                (user, age_days, user),
            )
    settings = load_privacy_settings(MYSETLIST_NOTIFICATION_RETENTION_DAYS=3650)
    assert await delete_old_notifications(runtime.db, settings) >= 1
    async with runtime.db.transaction() as conn:
        left = await fetch_one_in(
            conn,
            "SELECT count(*) AS notifications, (SELECT count(*) FROM notify.notification_delivery"
            " WHERE user_id = %s) AS deliveries FROM notify.notifications WHERE user_id = %s",
            (user, user),
        )
    assert left == {"notifications": 1, "deliveries": 1}


async def _insert_event(runtime: Runtime, kind: str, age_days: int, received_days_ago: int) -> None:
    async with runtime.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO analytics.user_events (message_id, anonymous_id, event_type,"
            " properties, created_at, received_at) VALUES (%s, 'anon-w', %s, '{\"q\": 1}',"
            " now() - make_interval(days => %s), now() - make_interval(days => %s))",
            (f"m-{uuid.uuid4().hex}", kind, age_days, received_days_ago),
        )


async def _identified(runtime: Runtime, kind: str) -> int:
    row = await runtime.db.fetch_one(
        "SELECT count(*) AS n FROM analytics.user_events"
        " WHERE event_type = %s AND anonymous_id IS NOT NULL",
        (kind,),
    )
    assert row is not None
    return int(row["n"])


async def test_a_later_run_anonymises_events_that_arrived_late_with_old_client_times(
    runtime: Runtime,
) -> None:
    """Each run reads only what became old enough since the last (a watermark, no
    (event_type, created_at) index): an event received after that run with a client time
    from long ago (ingest accepts times back to 1970) is still anonymised by the next."""
    kind = f"probe_{uuid.uuid4().hex[:8]}"
    settings = load_privacy_settings(MYSETLIST_ANONYMISE_EVENTS_AFTER=f"{kind}=30")
    await _insert_event(runtime, kind, age_days=40, received_days_ago=40)
    assert await anonymise_expired_events(runtime.db, settings) == {kind: 1}
    await _insert_event(runtime, kind, age_days=900, received_days_ago=0)  # default partition
    await _insert_event(runtime, kind, age_days=45, received_days_ago=0)
    await _insert_event(runtime, kind, age_days=5, received_days_ago=0)  # not old enough
    assert await anonymise_expired_events(runtime.db, settings) == {kind: 2}
    assert await _identified(runtime, kind) == 1


async def test_a_shorter_age_reads_every_partition_once(runtime: Runtime) -> None:
    """An age changed to a shorter one is a new watermark: its first run reads everything
    before the new cutoff, including events the old age's mark had already passed."""
    kind = f"probe_{uuid.uuid4().hex[:8]}"
    await _insert_event(runtime, kind, age_days=20, received_days_ago=20)
    thirty = load_privacy_settings(MYSETLIST_ANONYMISE_EVENTS_AFTER=f"{kind}=30")
    assert await anonymise_expired_events(runtime.db, thirty) == {kind: 0}
    ten = load_privacy_settings(MYSETLIST_ANONYMISE_EVENTS_AFTER=f"{kind}=10")
    assert await anonymise_expired_events(runtime.db, ten) == {kind: 1}
    assert await _identified(runtime, kind) == 0
