"""notification_analytics against hand-counted rows: one delivery per fate, on a template
name of this test's own (the grouping key), counted and turned into rates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery import analytics

pytestmark = pytest.mark.db

# (channel, status, timestamps set, open_count, machine_open, click_count)
FATES: list[tuple[str, str, tuple[str, ...], int, bool, int]] = [
    ("email", "opened", ("sent_at", "delivered_at", "opened_at"), 2, False, 0),
    ("email", "clicked", ("sent_at", "delivered_at", "opened_at", "clicked_at"), 1, True, 1),
    ("email", "bounced", ("sent_at", "bounced_at"), 0, False, 0),
    ("email", "complained", ("sent_at", "delivered_at", "complained_at"), 0, False, 0),
    ("email", "dropped", ("dropped_at",), 0, False, 0),
    ("email", "failed", ("failed_at",), 0, False, 0),
    ("email", "deferred", ("deferred_at",), 0, False, 0),
    ("in_app", "delivered", ("delivered_at",), 0, False, 0),
]


async def test_daily_counts_and_rates_match_hand_counted_rows(
    runtime: Runtime, make_users: Any
) -> None:
    template = f"analytics_{uuid.uuid4().hex[:12]}"
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    users = await make_users(len(FATES) + 1)
    # Rows written by hand, never due: no drain of another test may pick the deferred one.
    async with runtime.db.transaction() as conn:
        rows = [(today, *fate) for fate in FATES]
        rows.append((yesterday, "email", "sent", ("sent_at",), 0, False, 0))
        for user, (queued_at, channel, status, stamps, opens, machine, clicks) in zip(
            users, rows, strict=True
        ):
            cur = await conn.execute(
                """INSERT INTO notify.notifications (user_id, type, category, title, message,
                                                     template_name)
                   VALUES (%s, 'vote_summary', 'vote_results', 't', 'm', %s) RETURNING id""",
                (user.id, template),
            )
            (notification_id,) = await cur.fetchone()  # type: ignore[misc]
            sets = ", ".join(f"{column} = %(at)s" for column in stamps)
            await conn.execute(
                """INSERT INTO notify.notification_delivery
                      (notification_id, user_id, channel, recipient, status, queued_at,
                       open_count, machine_open, click_count, next_attempt_at)
                    VALUES (%(n)s, %(u)s, %(channel)s, 'r', %(status)s, %(at)s, %(opens)s,
                            %(machine)s, %(clicks)s, 'infinity')
                    RETURNING id""",
                {"n": notification_id, "u": user.id, "channel": channel, "status": status,
                 "at": queued_at, "opens": opens, "machine": machine, "clicks": clicks},
            )  # fmt: skip
            await conn.execute(
                f"UPDATE notify.notification_delivery SET {sets} WHERE notification_id = %(n)s",
                {"n": notification_id, "at": queued_at},
            )

    for _ in range(2):  # a re-run replaces the rows, it does not add to them
        await analytics.refresh_daily(runtime.db, since=yesterday.date())
    got = {
        (r["day"], r["channel"]): r
        for r in await runtime.db.fetch_all(
            "SELECT * FROM notify.notification_analytics WHERE template_name = %s", (template,)
        )
    }
    email = got[(today.date(), "email")]
    counts = {k: email[k] for k in ("queued", "sent", "delivered", "opened", "machine_opened",
                                    "clicked", "bounced", "complained", "dropped", "failed",
                                    "deferred")}  # fmt: skip
    assert counts == {
        "queued": 7, "sent": 4, "delivered": 3, "opened": 2, "machine_opened": 1,
        "clicked": 1, "bounced": 1, "complained": 1, "dropped": 1, "failed": 1, "deferred": 1,
    }  # fmt: skip
    rates = {k: email[k] for k in ("delivery_rate", "open_rate", "click_through_rate",
                                   "bounce_rate", "complaint_rate")}  # fmt: skip
    # 3 of 4 sent delivered; 1 human open of 4 (the machine open is not one); 1 click.
    assert rates == {
        "delivery_rate": Decimal("0.7500"), "open_rate": Decimal("0.2500"),
        "click_through_rate": Decimal("0.2500"), "bounce_rate": Decimal("0.2500"),
        "complaint_rate": Decimal("0.2500"),
    }  # fmt: skip
    in_app = got[(today.date(), "in_app")]
    assert (in_app["queued"], in_app["delivered"], in_app["delivery_rate"]) == (1, 1, None)
    assert got[(yesterday.date(), "email")]["sent"] == 1
    assert len(got) == 3
