"""Providers against real local servers: failover from SMTP to a SendGrid-like HTTP server
when the SMTP server stops mid-run, and back when it returns; Amazon SES through moto."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.notify import metrics
from mysetlist.notify.delivery.drain import Deliverer
from tests.conditions import until
from tests.conftest import free_port
from tests.notify.conftest import notify_settings, start_sink

pytestmark = pytest.mark.db


class FakeSendGrid:
    """Answers `POST /v3/mail/send` like SendGrid: 202 with an X-Message-Id."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                outer.auth.append(self.headers.get("Authorization"))
                outer.bodies.append(body)
                self.send_response(202 if self.path == "/v3/mail/send" else 404)
                self.send_header("X-Message-Id", f"sg-{uuid.uuid4().hex[:16]}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def recipients(self) -> list[str]:
        return [b["personalizations"][0]["to"][0]["email"] for b in self.bodies]


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    fake = FakeSendGrid()
    yield fake
    fake.server.shutdown()


async def _send_all(api_url: str, token_for: Any, users: list[Any]) -> None:
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(
            "/api/notifications/send",
            json={"userIds": [u.id for u in users], "type": "account_notice", "title": "Hi",
                  "message": "m", "channels": ["email"]},
            headers={"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"},
        )  # fmt: skip
        assert r.status_code == 202, r.text


def _switches(source: str, target: str) -> float:
    value: float = metrics.PROVIDER_SWITCHES.labels(source, target)._value.get()
    return value


async def test_mail_fails_over_when_smtp_stops_mid_run_and_comes_back(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, sendgrid: FakeSendGrid
) -> None:
    sink, controller = start_sink()
    settings = notify_settings(
        sink.port, EMAIL_PROVIDERS="smtp,sendgrid", SENDGRID_API_URL=sendgrid.url,
        SENDGRID_API_KEY="SG.test", NOTIFY_BATCH_SIZE=5, NOTIFY_BREAKER_FAILURES=2,
        NOTIFY_BREAKER_COOLDOWN_SECONDS=0.2, NOTIFY_PROVIDER_TIMEOUT_SECONDS=2,
    )  # fmt: skip
    deliverer = Deliverer.build(
        settings, runtime.cipher, runtime.settings.effective_encryption_key, runtime.redis_url
    )
    away, back = _switches("smtp", "sendgrid"), _switches("sendgrid", "smtp")
    try:
        first = await make_users(10, prefix="before")
        await _send_all(api_url, token_for, first)
        await deliverer.deliver_chunk(runtime.db)  # 5 through SMTP, then the server stops
        controller.stop()
        await deliverer.drain(runtime.db)
        assert len(sink.for_users({u.email for u in first})) == 5
        assert len([r for r in sendgrid.recipients() if r.startswith("before")]) == 5
        assert _switches("smtp", "sendgrid") == away + 1

        sink2, controller = start_sink(sink.port)  # SMTP is back on its address
        later = await make_users(40, prefix="after")
        await _send_all(api_url, token_for, later)

        async def smtp_again() -> bool:
            await deliverer.deliver_chunk(runtime.db)
            return bool(sink2.for_users({u.email for u in later}))

        await until(smtp_again, "traffic back on SMTP")
        await deliverer.drain(runtime.db)
        assert _switches("sendgrid", "smtp") == back + 1
        # every message went out exactly once, through one provider or the other
        delivered = [m["To"] for m in sink.messages + sink2.messages] + sendgrid.recipients()
        expected = {u.email for u in first + later}
        assert sorted(a for a in delivered if a in expected) == sorted(expected)
        rows = await runtime.db.fetch_all(
            """SELECT provider, status, provider_message_id FROM notify.notification_delivery
               WHERE user_id = ANY(%s::uuid[])""",
            ([u.id for u in first + later],),
        )
        assert {r["status"] for r in rows} == {"sent"}
        assert {r["provider"] for r in rows} == {"smtp", "sendgrid"}
        assert all(r["provider_message_id"] for r in rows)
        body = sendgrid.bodies[0]
        assert sendgrid.auth[0] == "Bearer SG.test"
        assert set(body["custom_args"]) == {"delivery_id", "notification_id"}  # ids only
    finally:
        controller.stop()
        await deliverer.close()


async def test_ses_v2_through_moto(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import boto3
    from moto.server import ThreadedMotoServer

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    settings = notify_settings(
        free_port(), EMAIL_PROVIDERS="ses", SES_ENDPOINT_URL=endpoint, AWS_REGION="eu-west-1",
        EMAIL_FROM="notifications@mysetlist.example",
    )  # fmt: skip
    deliverer = Deliverer.build(
        settings, runtime.cipher, runtime.settings.effective_encryption_key, runtime.redis_url
    )
    try:
        boto3.client("sesv2", region_name="eu-west-1", endpoint_url=endpoint).create_email_identity(
            EmailIdentity="notifications@mysetlist.example"
        )
        users = await make_users(2, prefix="ses")
        await _send_all(api_url, token_for, users)
        await deliverer.drain(runtime.db)
        rows = await runtime.db.fetch_all(
            """SELECT provider, status, provider_message_id FROM notify.notification_delivery
               WHERE user_id = ANY(%s::uuid[])""",
            ([u.id for u in users],),
        )
        assert [(r["provider"], r["status"]) for r in rows] == [("ses", "sent")] * 2
        async with httpx.AsyncClient() as c:
            sent = (await c.get(f"{endpoint}/moto-api/data.json")).json()["ses"]
        ids = {r["provider_message_id"] for r in rows}
        stored = {m["id"]: m for m in sent["Message"] if m["id"] in ids}
        assert {a for m in stored.values() for a in m["destinations"]["ToAddresses"]} == {
            u.email for u in users
        }
        assert {m["subject"] for m in stored.values()} == {"Hi"}
    finally:
        await deliverer.close()
        server.stop()
