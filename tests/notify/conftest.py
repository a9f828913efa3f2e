"""Real parts for the notify tests: an SMTP sink (aiosmtpd) on a free port, users with
verified emails at example.test, and a deliverer pointed at the sink."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mysetlist.core.runtime import Runtime
from mysetlist.notify.config import NotifySettings, load_notify_settings
from mysetlist.notify.delivery.drain import Deliverer
from tests.conftest import free_port


@dataclass
class SmtpSink:
    """Every message the sink accepted, parsed. Faults at the boundary, as a receiving
    server answers them: addresses in `refuse` get a 550 at RCPT, those in `busy` a 451 at
    RCPT that many times before they are accepted, a message to an address in
    `data_fault` gets that answer to its DATA, and one to an address in `slow_reply` is
    taken and answered that many seconds later (a server checking the message, or a lost
    reply when the sender gives up first)."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    arrived_at: list[float] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    busy: dict[str, int] = field(default_factory=dict)
    data_fault: dict[str, str] = field(default_factory=dict)
    slow_reply: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        with self.lock:
            if self.busy.get(address, 0) > 0:
                self.busy[address] -= 1
                return "451 4.7.1 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        for address in envelope.rcpt_tos:
            if address in self.data_fault:
                return self.data_fault[address]
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
            self.arrived_at.append(time.time())
        delay = max((self.slow_reply.get(a, 0.0) for a in envelope.rcpt_tos), default=0.0)
        if delay:
            await asyncio.sleep(delay)  # stands in for the slow server; no test waits on it
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def for_users(self, addresses: set[str]) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] in addresses]


def start_sink(port: int | None = None) -> tuple[SmtpSink, Controller]:
    sink = SmtpSink(port or free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    return sink, controller


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink, controller = start_sink()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass(frozen=True)
class TestUser:
    id: str
    email: str


@pytest.fixture
def make_users(runtime: Runtime) -> Callable[..., Any]:
    async def make(
        n: int, *, timezone: str = "UTC", verified: bool = True, prefix: str = "fan"
    ) -> list[TestUser]:
        run = uuid.uuid4().hex[:8]
        users = []
        async with runtime.db.transaction() as conn:
            for i in range(n):
                address = f"{prefix}-{run}-{i}@example.test"
                cur = await conn.execute(
                    """INSERT INTO app.users (display_name, email_encrypted, email_hash,
                                              timezone, email_verified_at, last_active_at)
                       VALUES (%s, %s, %s, %s, CASE WHEN %s THEN now() END, now())
                       RETURNING id""",
                    (
                        f"Fan {i}",
                        runtime.cipher.encrypt(address, context=b"users.email"),
                        runtime.cipher.lookup_hash(address),
                        timezone,
                        verified,
                    ),
                )
                row = await cur.fetchone()
                assert row is not None
                users.append(TestUser(str(row[0]), address))
        return users

    return make


def notify_settings(smtp_port: int, **overrides: Any) -> NotifySettings:
    values: dict[str, Any] = {
        "EMAIL_PROVIDERS": "smtp",
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "NOTIFY_RATE_LIMIT_PER_MINUTE": 0,
        "NOTIFY_RETRY_DELAY_MS": 1,
        "NOTIFY_PUBLIC_URL": "http://notify.test",
    }
    values.update(overrides)
    return load_notify_settings(**values)


@pytest.fixture
async def deliverer(runtime: Runtime, smtp_sink: SmtpSink) -> AsyncIterator[Deliverer]:
    built = Deliverer.build(
        notify_settings(smtp_sink.port), runtime.cipher,
        runtime.settings.effective_encryption_key, runtime.redis_url,
    )  # fmt: skip
    yield built
    await built.close()


def body_of(mail: EmailMessage, subtype: str = "html") -> str:
    """The HTML (or `subtype`) part of a message the sink accepted."""
    part = mail.get_body((subtype,))
    assert part is not None, f"no {subtype} part"
    content: str = part.get_content()
    return content
