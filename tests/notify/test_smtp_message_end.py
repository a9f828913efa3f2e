"""The reply to a message's end (DATA's final answer) against a real SMTP server: a slow
reply within `data_timeout` is one message, and a reply that never comes is an unknown
outcome whose retry carries the same Message-ID, so the receiver can drop the copy."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from mysetlist.notify.providers.base import EmailMessage, ProviderError, delivery_message_id
from mysetlist.notify.providers.smtp import SmtpProvider
from tests.notify.conftest import SmtpSink

CREATED = datetime(2026, 12, 4, 17, 0, 0, 123456, tzinfo=UTC)
MESSAGE = EmailMessage(
    7, "slow@example.test", "from@example.test", "s", "<p>h</p>", "t",
    delivery_message_id(7, CREATED),
)  # fmt: skip


def test_one_message_id_per_delivery() -> None:
    same = delivery_message_id(7, CREATED)
    assert same == delivery_message_id(7, CREATED)
    assert same.startswith("<d7.")
    assert same.endswith("@mysetlist>")
    # Another delivery, or the same id in a rebuilt database, is another message.
    assert delivery_message_id(8, CREATED) != same
    assert delivery_message_id(7, CREATED.replace(microsecond=123457)) != same


async def test_a_slow_reply_to_the_message_end_is_waited_for(smtp_sink: SmtpSink) -> None:
    """The commands' timeout (0.2 s) is shorter than the server's answer to the message's
    end (0.6 s): waiting only the commands' timeout would fail the send, and its retry
    would deliver the message twice."""
    smtp_sink.slow_reply[MESSAGE.to] = 0.6
    provider = SmtpProvider(
        f"smtp://127.0.0.1:{smtp_sink.port}", connections=1, timeout=0.2, data_timeout=30
    )
    try:
        assert await provider.send(MESSAGE) == MESSAGE.message_id.strip("<>")
        assert [m["Message-ID"] for m in smtp_sink.to(MESSAGE.to)] == [MESSAGE.message_id]
        # The connection is kept for the next message.
        other = dataclasses.replace(MESSAGE, to="next@example.test", message_id="<d8.1@mysetlist>")
        await provider.send(other)
        assert len(smtp_sink.to("next@example.test")) == 1
    finally:
        await provider.close()


async def test_no_reply_to_the_message_end_is_retried_with_the_same_message_id(
    smtp_sink: SmtpSink,
) -> None:
    smtp_sink.slow_reply[MESSAGE.to] = 1.0
    provider = SmtpProvider(
        f"smtp://127.0.0.1:{smtp_sink.port}", connections=1, timeout=5, data_timeout=0.2
    )
    try:
        with pytest.raises(ProviderError) as unknown:
            await provider.send(MESSAGE)
        assert unknown.value.retryable
        assert not unknown.value.recipient
        assert "outcome unknown" in str(unknown.value)
        del smtp_sink.slow_reply[MESSAGE.to]
        await provider.send(MESSAGE)  # the retry, on a new connection
        copies = smtp_sink.to(MESSAGE.to)
        assert len(copies) == 2  # SMTP's at-least-once: the server had taken the first
        assert {m["Message-ID"] for m in copies} == {MESSAGE.message_id}
    finally:
        await provider.close()


async def test_a_refused_recipient_leaves_the_connection_usable(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse.add("gone@example.test")
    provider = SmtpProvider(f"smtp://127.0.0.1:{smtp_sink.port}", connections=1)
    try:
        with pytest.raises(ProviderError) as refused:
            await provider.send(dataclasses.replace(MESSAGE, to="gone@example.test"))
        assert refused.value.bounce
        assert not refused.value.retryable
        assert "550" in str(refused.value)
        await provider.send(dataclasses.replace(MESSAGE, to="fan@example.test"))
        assert len(smtp_sink.to("fan@example.test")) == 1
    finally:
        await provider.close()
