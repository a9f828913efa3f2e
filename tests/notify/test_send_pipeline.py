"""POST /api/notifications/send through the drain into the SMTP sink: one transaction per
request, idempotency keys, throttle, channel choice, retries and bounces."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery.drain import Deliverer
from tests.conditions import until
from tests.notify.conftest import SmtpSink, body_of

pytestmark = pytest.mark.db


def _operator(token_for: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"}


async def _deliveries(runtime: Runtime, user_ids: list[str]) -> list[dict[str, Any]]:
    return await runtime.db.fetch_all(
        """SELECT d.*, n.type FROM notify.notification_delivery d
           JOIN notify.notifications n ON n.id = d.notification_id
           WHERE d.user_id = ANY(%s::uuid[]) ORDER BY d.id""",
        (user_ids,),
    )


async def test_a_send_reaches_the_sink_with_unsubscribe_headers_and_status_sent(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    users = await make_users(3)
    body = {"userIds": [u.id for u in users], "type": "show_reminder", "title": "Show Reminder",
            "message": "Arctic Monkeys is performing tonight!", "data": {"showId": 1},
            "variables": {"artist_name": "Arctic Monkeys", "reminder_text": "tonight",
                          "show_url": "https://mysetlist.example/shows/1"},
            "channels": ["email", "in_app"]}  # fmt: skip
    async with httpx.AsyncClient(base_url=api_url, headers=_operator(token_for)) as c:
        r = await c.post("/api/notifications/send", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["notifications"] == 3
    assert r.json()["deliveries"] == {"email": 3, "in_app": 3}
    await deliverer.drain(runtime.db)
    messages = smtp_sink.for_users({u.email for u in users})
    assert len(messages) == 3
    message = messages[0]
    assert message["Subject"] == "Arctic Monkeys is performing tonight"
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<http://notify.test/u/")
    assert "<mailto:" in unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = body_of(message)
    assert "http://notify.test/api/notifications/t/c/" in html  # the show link is tracked
    assert "https://mysetlist.example/shows/1" not in html  # destination kept server-side
    assert "Unsubscribe or change preferences" in html
    rows = await _deliveries(runtime, [u.id for u in users])
    assert sorted((r["channel"], r["status"]) for r in rows) == sorted(
        [("email", "sent")] * 3 + [("in_app", "delivered")] * 3
    )
    email_row = next(r for r in rows if r["channel"] == "email")
    assert email_row["provider"] == "smtp"
    assert email_row["provider_message_id"]
    assert email_row["sent_at"] is not None


async def test_only_operators_and_the_service_role_may_send(
    api_url: str, token_for: Any, make_users: Any
) -> None:
    (user,) = await make_users(1)
    body = {"userId": user.id, "type": "marketing", "title": "t", "message": "m"}
    async with httpx.AsyncClient(base_url=api_url) as c:
        fan = await c.post("/api/notifications/send", json=body,
                           headers={"Authorization": f"Bearer {token_for(user.id)}"})  # fmt: skip
        assert fan.status_code == 403
        assert (await c.post("/api/notifications/send", json=body)).status_code == 401


async def test_bad_requests_get_a_4xx_naming_the_field_and_write_nothing(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime
) -> None:
    (user,) = await make_users(1)
    base = {"userId": user.id, "type": "marketing", "title": "t", "message": "m"}
    cases = [
        ({**base, "type": "nope"}, "type"),
        ({**base, "userIds": [user.id]}, "userId"),
        ({**base, "userId": str(uuid.uuid4())}, "userId"),
        ({**base, "channels": ["fax"]}, "channels.0"),
        ({**base, "template": "show_reminder"}, "variables.artist_name"),
        ({**base, "title": ""}, "title"),
        (
            {
                "segment": {"type": "artist_followers"},
                "type": "marketing",
                "title": "t",
                "message": "m",
            },
            "segment.artistId",
        ),
    ]
    async with httpx.AsyncClient(base_url=api_url, headers=_operator(token_for)) as c:
        for body, field in cases:
            r = await c.post("/api/notifications/send", json=body)
            assert r.status_code == 422, (body, r.text)
            assert field in [e["field"] for e in r.json()["errors"]], r.json()
    assert await _deliveries(runtime, [user.id]) == []


async def test_an_idempotency_key_replays_the_first_result_and_sends_nothing_more(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    (user,) = await make_users(1)
    body = {"userId": user.id, "type": "account_notice", "title": "Hello", "message": "m"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    async with httpx.AsyncClient(base_url=api_url, headers=_operator(token_for)) as c:
        first, second = await asyncio.gather(
            c.post("/api/notifications/send", json=body, headers=key),
            c.post("/api/notifications/send", json=body, headers=key),
        )
        codes = sorted([first.status_code, second.status_code])
        # concurrent: one wins, the other is either in flight (409) or a replay (202)
        assert codes in ([202, 202], [202, 409]), (first.text, second.text)
        again = await c.post("/api/notifications/send", json=body, headers=key)
        assert again.status_code == 202
        assert again.headers["Idempotent-Replayed"] == "true"
        winner = first if first.status_code == 202 else second
        assert again.json() == winner.json()
        other = await c.post("/api/notifications/send", json={**body, "title": "Bye"}, headers=key)
        assert other.status_code == 422
        assert other.json()["detail"] == "Idempotency-Key: already used for a different request"
        assert other.json()["errors"] == [
            {"field": "Idempotency-Key", "message": "used for a different request"}
        ]
        history = await c.get("/api/notifications/send",
                              params={"requestId": winner.json()["requestId"]})  # fmt: skip
    await deliverer.drain(runtime.db)
    assert len(smtp_sink.to(user.email)) == 1
    assert len([r for r in await _deliveries(runtime, [user.id]) if r["channel"] == "email"]) == 1
    (entry,) = history.json()["requests"]
    assert entry["channels"]["email"] == {"queued": 1}


async def test_a_burst_about_one_show_is_one_notification(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime
) -> None:
    (user,) = await make_users(1)
    body = {"userId": user.id, "type": "vote_activity", "title": "New votes",
            "message": "fans voted on your show", "data": {"showId": 42}}  # fmt: skip
    async with httpx.AsyncClient(base_url=api_url, headers=_operator(token_for)) as c:
        results = await asyncio.gather(
            *(c.post("/api/notifications/send", json=body) for _ in range(50))
        )
    assert all(r.status_code == 202 for r in results)
    assert sum(r.json()["notifications"] for r in results) == 1
    assert sum(r.json()["throttled"] for r in results) == 49
    folded = await runtime.db.fetch_one(
        "SELECT folded FROM notify.throttle_windows WHERE user_id = %s", (user.id,)
    )
    assert folded == {"folded": 49}


async def test_no_email_without_a_verified_address_and_a_refused_address_is_suppressed(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    (unverified,) = await make_users(1, verified=False)
    bouncing, fine = await make_users(2)
    smtp_sink.refuse.add(bouncing.email)
    async with httpx.AsyncClient(base_url=api_url, headers=_operator(token_for)) as c:
        r = await c.post("/api/notifications/send", json={
            "userIds": [unverified.id, bouncing.id, fine.id], "type": "vote_activity",
            "title": "t", "message": "m", "channels": ["email"]})  # fmt: skip
        assert r.json()["skipped"]["no_channel"] == 1
        await deliverer.drain(runtime.db)
        statuses = {row["user_id"]: row["status"]
                    for row in await _deliveries(runtime, [bouncing.id, fine.id])}  # fmt: skip
        assert statuses == {uuid.UUID(bouncing.id): "bounced", uuid.UUID(fine.id): "sent"}
        again = await c.post("/api/notifications/send", json={
            "userId": bouncing.id, "type": "account_notice", "title": "t", "message": "m",
            "channels": ["email"]})  # fmt: skip
        assert again.json()["notifications"] == 0  # suppressed: not even transactional email


async def test_retryable_failures_back_off_then_fail_after_max_retries(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime
) -> None:
    from tests.conftest import free_port
    from tests.notify.conftest import notify_settings

    (user,) = await make_users(1)
    dead = Deliverer.build(
        notify_settings(free_port(), NOTIFY_MAX_RETRIES=2, NOTIFY_BREAKER_FAILURES=100),
        runtime.cipher, runtime.settings.effective_encryption_key, runtime.redis_url,
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=api_url, headers=_operator(token_for)) as c:
        await c.post("/api/notifications/send", json={
            "userId": user.id, "type": "account_notice", "title": "t", "message": "m",
            "channels": ["email"]})  # fmt: skip

    async def status() -> str:
        await dead.drain(runtime.db, budget_seconds=1)
        rows = await _deliveries(runtime, [user.id])
        return str(rows[0]["status"])

    try:
        await _wait_for_status(status, "failed")
    finally:
        await dead.close()
    (row,) = await _deliveries(runtime, [user.id])
    assert row["attempts"] == 3  # the first try and maxRetries=2 retries
    assert row["failed_at"] is not None
    assert row["deferred_at"] is not None
    assert "unreachable" in row["last_error"]


async def _wait_for_status(status: Any, wanted: str) -> None:
    async def reached() -> bool:
        return bool(await status() == wanted)

    await until(reached, f"status {wanted}")


async def test_a_key_still_in_flight_is_409_and_a_failed_request_frees_its_key(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime
) -> None:
    from mysetlist.notify.delivery.sending import SendRequest, _request_hash

    (user,) = await make_users(1)
    caller = uuid.uuid4()
    headers = {"Authorization": f"Bearer {token_for(caller, role='service_role')}"}
    body = {"userId": user.id, "type": "account_notice", "title": "t", "message": "m"}
    busy = uuid.uuid4().hex
    # another API process is inside this request's transaction right now
    await runtime.db.fetch_all(
        """INSERT INTO notify.send_requests (idempotency_key, caller, request_hash)
           VALUES (%s, %s, %s) RETURNING id""",
        (busy, str(caller), _request_hash(SendRequest.model_validate(body))),
    )
    failing = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=api_url, headers=headers) as c:
        r = await c.post("/api/notifications/send", json=body, headers={"Idempotency-Key": busy})
        assert r.status_code == 409
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["Retry-After"] == "1"  # the first request is about to commit
        assert r.json()["title"] == "Conflict"
        unknown = {**body, "userId": str(uuid.uuid4())}
        r = await c.post("/api/notifications/send", json=unknown,
                         headers={"Idempotency-Key": failing})  # fmt: skip
        assert r.status_code == 422
        r = await c.post("/api/notifications/send", json=body, headers={"Idempotency-Key": failing})
        assert r.status_code == 202  # the failed attempt left nothing behind, not even its key
        assert "Idempotent-Replayed" not in r.headers


async def test_a_segment_reaches_the_followers_of_an_artist(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime
) -> None:
    fans = await make_users(3)
    artist = await runtime.db.fetch_one(
        "INSERT INTO app.artists (name) VALUES ('Segment Band') RETURNING id"
    )
    assert artist is not None
    for fan in fans[:2]:
        await runtime.db.fetch_all(
            "INSERT INTO app.follows (user_id, artist_id) VALUES (%s, %s) RETURNING user_id",
            (fan.id, artist["id"]),
        )
    async with httpx.AsyncClient(base_url=api_url, headers=_operator(token_for)) as c:
        r = await c.post("/api/notifications/send", json={
            "segment": {"type": "artist_followers", "artistId": artist["id"]},
            "type": "followed_artist_update", "title": "News", "message": "m",
            "variables": {"artist_name": "Segment Band", "artist_id": artist["id"]}})  # fmt: skip
    assert r.status_code == 202, r.text
    assert r.json()["notifications"] == 2
    assert r.json()["skipped"] == {}
    reached = await runtime.db.fetch_all(
        "SELECT user_id FROM notify.notifications WHERE request_id = %s",
        (r.json()["requestId"],),
    )
    assert {str(row["user_id"]) for row in reached} == {f.id for f in fans[:2]}


@pytest.mark.parametrize(
    ("answer", "retried"), [("451 4.3.0 local problem", True), ("554 5.6.0 content refused", False)]
)
async def test_a_fault_on_one_message_does_not_resend_the_rest_of_its_chunk(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, smtp_sink: SmtpSink,
    answer: str, retried: bool,
) -> None:  # fmt: skip
    """The receiving server refuses one message of a chunk at DATA (a real fault at the
    boundary): that delivery is retried to maxRetries (4xx) or fails at once (5xx), and the
    chunk's other messages, already accepted, are recorded once and never sent again."""
    from tests.notify.conftest import notify_settings

    users = await make_users(5)
    unlucky = users[2].email
    smtp_sink.data_fault[unlucky] = answer
    settings = notify_settings(smtp_sink.port, NOTIFY_BATCH_SIZE=10, NOTIFY_MAX_RETRIES=3)
    deliverer = Deliverer.build(
        settings, runtime.cipher, runtime.settings.effective_encryption_key, runtime.redis_url
    )
    try:
        async with httpx.AsyncClient(base_url=api_url, headers=_operator(token_for)) as c:
            await c.post("/api/notifications/send", json={
                "userIds": [u.id for u in users], "type": "account_notice", "title": "t",
                "message": "m", "channels": ["email"]})  # fmt: skip

        async def unlucky_status() -> str:
            await deliverer.drain(runtime.db, budget_seconds=1)
            rows = await _deliveries(runtime, [users[2].id])
            return str(rows[0]["status"])

        await _wait_for_status(unlucky_status, "failed")
        rows = {str(r["user_id"]): r for r in await _deliveries(runtime, [u.id for u in users])}
        # One message refused to maxRetries is that message's matter: it must not open the
        # provider's breaker (30 s cooldown here), so the next fan's mail goes out at once.
        async with httpx.AsyncClient(base_url=api_url, headers=_operator(token_for)) as c:
            await c.post("/api/notifications/send", json={
                "userIds": [users[0].id], "type": "account_notice", "title": "after",
                "message": "m", "channels": ["email"]})  # fmt: skip
        await deliverer.drain(runtime.db, budget_seconds=1)
    finally:
        await deliverer.close()
    failed = rows.pop(users[2].id)
    assert f"SMTP {answer[:3]}" in failed["last_error"]
    assert failed["attempts"] == (4 if retried else 1)  # the first try and maxRetries
    assert {(r["status"], r["attempts"]) for r in rows.values()} == {("sent", 1)}
    received = Counter(m["To"] for m in smtp_sink.for_users({u.email for u in users}))
    assert received == Counter(u.email for u in users if u.email != unlucky) + Counter(
        [users[0].email]
    )


async def test_an_address_that_does_not_decrypt_fails_alone(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    broken, fine = await make_users(2)
    await runtime.db.fetch_all(
        "UPDATE app.users SET email_encrypted = %s WHERE id = %s RETURNING id",
        (b"\x01" + b"\x00" * 40, broken.id),  # e.g. written under a retired key
    )
    async with httpx.AsyncClient(base_url=api_url, headers=_operator(token_for)) as c:
        await c.post("/api/notifications/send", json={
            "userIds": [broken.id, fine.id], "type": "account_notice", "title": "t",
            "message": "m", "channels": ["email"]})  # fmt: skip
    await deliverer.drain(runtime.db)
    statuses = {str(r["user_id"]): r["status"]
                for r in await _deliveries(runtime, [broken.id, fine.id])}  # fmt: skip
    assert statuses == {broken.id: "failed", fine.id: "sent"}
    assert len(smtp_sink.to(fine.email)) == 1


async def test_a_greylisted_recipient_neither_opens_the_breaker_nor_pauses_other_mail(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    """451 at RCPT for one address, more times than the breaker's threshold: that message
    is retried until the receiver takes it; SMTP stays the provider for everyone else."""
    from mysetlist.notify import metrics
    from tests.notify.conftest import notify_settings

    greylisted, *others = await make_users(6)
    smtp_sink.busy[greylisted.email] = 4
    settings = notify_settings(
        smtp_sink.port, NOTIFY_BREAKER_FAILURES=2, NOTIFY_MAX_RETRIES=10, NOTIFY_BATCH_SIZE=2
    )
    deliverer = Deliverer.build(
        settings, runtime.cipher, runtime.settings.effective_encryption_key, runtime.redis_url
    )
    switches = metrics.PROVIDER_SWITCHES.labels("smtp", "none")._value.get()
    try:
        async with httpx.AsyncClient(base_url=api_url, headers=_operator(token_for)) as c:
            await c.post("/api/notifications/send", json={
                "userIds": [greylisted.id] + [u.id for u in others], "type": "account_notice",
                "title": "t", "message": "m", "channels": ["email"]})  # fmt: skip

        async def greylisted_status() -> str:
            await deliverer.drain(runtime.db, budget_seconds=1)
            rows = await _deliveries(runtime, [greylisted.id])
            return str(rows[0]["status"])

        await _wait_for_status(greylisted_status, "sent")
    finally:
        await deliverer.close()
    assert metrics.PROVIDER_SWITCHES.labels("smtp", "none")._value.get() == switches
    rows = await _deliveries(runtime, [u.id for u in others])
    assert {(r["status"], r["attempts"]) for r in rows} == {("sent", 1)}
    assert (await _deliveries(runtime, [greylisted.id]))[0]["attempts"] == 5
    assert len(smtp_sink.to(greylisted.email)) == 1
