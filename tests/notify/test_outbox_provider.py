"""The local outbox provider: a send through the real pipeline (API, queue rows, drain)
ends as one .eml file per message that Python's email parser reads back whole."""

from __future__ import annotations

import email
import email.policy
import stat
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery.drain import Deliverer
from tests.notify.conftest import notify_settings

pytestmark = pytest.mark.db


async def test_outbox_writes_rfc5322_messages_the_email_parser_reads_back(
    api_url: str, token_for: Any, make_users: Any, runtime: Runtime, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    settings = notify_settings(1, EMAIL_PROVIDERS="outbox", EMAIL_OUTBOX_DIR=str(outbox))
    deliverer = Deliverer.build(
        settings, runtime.cipher, runtime.settings.effective_encryption_key, runtime.redis_url
    )
    users = await make_users(2, prefix="outbox")
    title, text = "Zugabe für Björk, heute", "Line one.\nÜmlauts & <html> stay text."
    try:
        async with httpx.AsyncClient(base_url=api_url) as client:
            sent = await client.post(
                "/api/notifications/send",
                json={"userIds": [u.id for u in users], "type": "account_notice",
                      "title": title, "message": text, "channels": ["email"]},
                headers={"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"},
            )  # fmt: skip
        assert sent.status_code == 202, sent.text
        await deliverer.drain(runtime.db)
    finally:
        await deliverer.close()

    rows = await runtime.db.fetch_all(
        """SELECT user_id::text, provider, status, provider_message_id
           FROM notify.notification_delivery WHERE user_id = ANY(%s::uuid[])""",
        ([u.id for u in users],),
    )
    assert [(r["provider"], r["status"]) for r in rows] == [("outbox", "sent")] * 2
    files = sorted(p.name for p in outbox.iterdir())
    assert files == sorted(r["provider_message_id"] for r in rows)  # no partial file left
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700

    by_address = {u.email: u for u in users}
    for name in files:
        path = outbox / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # addresses and text: owner only
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        assert not message.defects
        assert message["To"] in by_address
        assert message["Subject"] == title  # RFC 2047 decoded back
        assert message["From"].addresses[0].addr_spec == settings.email_from.split("<")[1][:-1]
        assert message["Message-ID"].startswith("<")
        assert message["Message-ID"].endswith(">")
        # "-0000": UTC (RFC 5322 3.3), which the parser answers as a naive time
        written = parsedate_to_datetime(message["Date"]).replace(tzinfo=UTC)
        assert abs(datetime.now(UTC) - written) < timedelta(minutes=5)
        assert message.get_content_type() == "multipart/alternative"
        plain = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        assert plain is not None
        assert html is not None
        assert "Ümlauts & <html> stay text." in plain.get_content()
        assert "&lt;html&gt;" in html.get_content()  # the HTML part escapes the text
