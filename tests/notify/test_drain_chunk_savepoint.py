"""The drain holds one savepoint per chunk; when a statement fails under it, the chunk goes
back to the savepoint and takes the careful path (a savepoint per statement, outcomes
recorded one by one). Either way: whatever a provider took is never sent again, and only
the delivery whose statement failed ends failed.

The failures are real ones: a trigger makes PostgreSQL refuse one statement (the tracked
links of one delivery; the push bookkeeping of one subscription)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from mysetlist.core.runtime import Runtime
from tests.notify import conftest as notify_fixtures
from tests.notify.conftest import SmtpSink
from tests.notify.test_web_push import Browser, PushService, start_push_service
from tests.security.notify_support import (
    delivery_rows,
    push_deliverer,
    send,
    store_subscription,
)

pytestmark = pytest.mark.db
smtp_sink = notify_fixtures.smtp_sink
make_users = notify_fixtures.make_users


@pytest.fixture
def push_server() -> Iterator[PushService]:
    yield from start_push_service()


@pytest.fixture
async def refusals(runtime: Runtime) -> AsyncIterator[str]:
    """A marker; statements touching a row that carries it are refused by triggers (only
    this test's rows carry it, so tests running beside it are not disturbed)."""
    marker = f"refused-{uuid.uuid4().hex[:12]}"
    name = marker.replace("-", "_")
    function = f"""CREATE FUNCTION public.{name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_TABLE_NAME = 'tracked_links' THEN
            IF NEW.url LIKE '%{marker}%' THEN
              RAISE EXCEPTION 'refused by the test';
            END IF;
          ELSIF OLD.failure_count = -7 THEN
            RAISE EXCEPTION 'refused by the test';
          END IF;
          RETURN NEW;
        END $$"""
    async with runtime.db.transaction() as conn:
        await conn.execute(function)
        for table, event in (("notify.tracked_links", "INSERT OR UPDATE"),
                             ("app.push_subscriptions", "UPDATE")):  # fmt: skip
            await conn.execute(
                f"CREATE TRIGGER {name} BEFORE {event} ON {table}"
                f" FOR EACH ROW EXECUTE FUNCTION public.{name}()"
            )
    try:
        yield marker
    finally:
        async with runtime.db.transaction() as conn:
            for table in ("notify.tracked_links", "app.push_subscriptions"):
                await conn.execute(f"DROP TRIGGER {name} ON {table}")
            await conn.execute(f"DROP FUNCTION public.{name}()")


async def _template_linking_to(runtime: Runtime, url: str) -> str:
    name = f"linked_{uuid.uuid4().hex[:8]}"
    await runtime.db.fetch_one(
        """INSERT INTO notify.email_templates (name, locale, version, category, subject,
                                               html_body)
           VALUES (%s, 'en', 1, 'account', 'Hello', %s) RETURNING id""",
        (name, f'<p><a href="{url}">see</a></p>'),
    )
    return name


async def test_a_refused_record_keeps_every_sent_message_sent_once(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, smtp_sink: SmtpSink,
    push_server: PushService, refusals: str,
) -> None:  # fmt: skip
    good = await make_users(3, prefix="good")
    (linked,) = await make_users(1, prefix="linked")
    template = await _template_linking_to(runtime, f"https://example.org/{refusals}")
    for body in (
        {"userIds": [u.id for u in good], "type": "account_notice", "title": "t",
         "message": "m", "channels": ["email"]},
        {"userId": linked.id, "type": "account_notice", "title": "t", "message": "m",
         "template": template, "channels": ["email"]},
    ):  # fmt: skip
        r = await send(api_url, token_for, body)
        assert r.status_code == 202, r.text

    deliverer = push_deliverer(runtime, smtp_sink.port, push_server, NOTIFY_BATCH_SIZE=200)
    try:
        for _ in range(3):  # more drains must not send anything twice
            await deliverer.drain(runtime.db)
    finally:
        await deliverer.close()

    everyone = [*good, linked]
    received = Counter(m["To"] for m in smtp_sink.for_users({u.email for u in everyone}))
    assert {u.email: received[u.email] for u in everyone} == {u.email: 1 for u in everyone}
    status = {str(r["user_id"]): r for r in await delivery_rows(runtime, [u.id for u in everyone])}
    assert [status[u.id]["status"] for u in good] == ["sent"] * len(good)
    refused = status[linked.id]
    assert (refused["status"], refused["attempts"]) == ("failed", 1)
    assert "refused by the test" in refused["last_error"]


async def test_a_refused_channel_statement_sends_the_rest_of_the_chunk_once(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, smtp_sink: SmtpSink,
    push_server: PushService, refusals: str,
) -> None:  # fmt: skip
    emailed = await make_users(4, prefix="emailed")
    (pushed,) = await make_users(1, prefix="pushed")
    name = uuid.uuid4().hex
    subscription = await store_subscription(
        runtime, pushed.id, f"{push_server.url}/push/{name}", Browser().keys()
    )
    # The push bookkeeping after the send (an UPDATE of this subscription) is refused.
    await runtime.db.fetch_one(
        "UPDATE app.push_subscriptions SET failure_count = -7 WHERE id = %s RETURNING id",
        (subscription,),
    )
    for body in (
        {"userIds": [u.id for u in emailed], "type": "account_notice", "title": "t",
         "message": "m", "channels": ["email"]},
        {"userId": pushed.id, "type": "account_notice", "title": "Doors",
         "message": "Doors at 8", "channels": ["push"]},
    ):  # fmt: skip
        r = await send(api_url, token_for, body)
        assert r.status_code == 202, r.text

    deliverer = push_deliverer(runtime, smtp_sink.port, push_server, NOTIFY_BATCH_SIZE=200)
    try:
        for _ in range(3):
            await deliverer.drain(runtime.db)
    finally:
        await deliverer.close()

    received = Counter(m["To"] for m in smtp_sink.for_users({u.email for u in emailed}))
    assert {u.email: received[u.email] for u in emailed} == {u.email: 1 for u in emailed}
    assert len(push_server.to(name)) == 1
    rows = await delivery_rows(runtime, [u.id for u in (*emailed, pushed)])
    assert {str(r["user_id"]): r["status"] for r in rows} == {
        u.id: "sent" for u in (*emailed, pushed)
    }
