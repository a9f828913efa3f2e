"""SMTP via aiosmtplib, over a few kept-open connections (a new TLS/SMTP handshake per
message would cap throughput far below what the sink or a relay accepts)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from urllib.parse import unquote, urlsplit

import aiosmtplib

from mysetlist.notify.providers.base import EmailMessage, Gate, ProviderError


def _header(value: str) -> str:
    """ASCII as is; anything else as an RFC 2047 encoded word (the stdlib's Header)."""
    if value.isascii():
        return value
    return Header(value, "utf-8").encode()


def to_mime(message: EmailMessage) -> bytes:
    """multipart/alternative (text, then HTML), both base64 UTF-8.

    Written out directly: building it with the stdlib's `email` objects and flattening
    them (header parsing and folding) cost most of a send's CPU in the profile, and set
    the ceiling of a worker's deliveries per second. Header values are single-line by
    construction (a rendered subject with CR/LF is refused before this)."""
    boundary = f"=_{uuid.uuid4().hex}"
    headers = {
        "From": formataddr(parseaddr(message.sender), charset="utf-8"),
        "To": message.to,
        "Subject": _header(message.subject),
        "Message-ID": message.message_id,
        "Date": formatdate(localtime=False),
        "MIME-Version": "1.0",
        **{name: _header(value) for name, value in message.headers.items()},
        "Content-Type": f'multipart/alternative; boundary="{boundary}"',
    }
    lines = [f"{name}: {value}" for name, value in headers.items()]
    for subtype, body in (("plain", message.text), ("html", message.html)):
        lines += [
            "",
            f"--{boundary}",
            f'Content-Type: text/{subtype}; charset="utf-8"',
            "Content-Transfer-Encoding: base64",
            "",
            base64.encodebytes(body.encode()).decode("ascii").rstrip("\n").replace("\n", "\r\n"),
        ]
    lines += ["", f"--{boundary}--", ""]
    return "\r\n".join(lines).encode("ascii")


class SmtpProvider:
    name = "smtp"

    def __init__(
        self, url: str, *, connections: int = 4, timeout: float = 10.0,
        data_timeout: float = 120.0,
    ) -> None:  # fmt: skip
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._tls = parts.scheme == "smtps"
        self._port = parts.port or (465 if self._tls else 25)
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._timeout = timeout
        # The wait for the reply to the message's end. RFC 5321 §4.5.3.2.6 asks for 10 min,
        # since a server may check the message before answering; a reply that never comes
        # leaves the outcome unknown and the message is sent again (same Message-ID). We
        # wait less than 10 min because the delivery's claim transaction stays open meanwhile.
        self._data_timeout = data_timeout
        self._idle: asyncio.Queue[aiosmtplib.SMTP | None] = asyncio.Queue()
        for _ in range(connections):
            self._idle.put_nowait(None)  # a slot; connected on first use

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self._host, port=self._port, use_tls=self._tls, timeout=self._timeout
        )
        await client.connect()
        if self._username and self._password:
            await client.login(self._username, self._password)
        return client

    async def send(self, message: EmailMessage, *, gate: Gate | None = None) -> str:
        data = to_mime(message)
        sender = parseaddr(message.sender)[1]
        client = await self._idle.get()
        data_sent = False
        try:
            if client is None or not client.is_connected:
                client = await self._connect()
            if gate is not None:
                await gate()
            # sendmail's steps, so that DATA alone waits `data_timeout` for its reply.
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
            # RFC 1870: a server with a size limit refuses at MAIL, before the transfer.
            size = [f"size={len(data)}"] if client.supports_extension("size") else []
            await client.mail(sender, options=size)
            try:
                await client.rcpt(message.to)
                data_sent = True
                await client.data(data, timeout=self._data_timeout)
            except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError):
                await _reset(client)  # as sendmail does: the connection takes the next message
                raise
        except aiosmtplib.SMTPRecipientRefused as exc:
            transient = 400 <= exc.code < 500
            raise ProviderError(
                f"recipient refused: {exc.code}", retryable=transient, bounce=not transient,
                recipient=True,
            ) from None  # fmt: skip
        except aiosmtplib.SMTPDataError as exc:
            if exc.code == 421:  # the server is closing the channel: its fault, not ours
                _discard(client)
                client = None
                raise ProviderError(f"SMTP {exc.code}: {exc.message}", retryable=True) from None
            # The server took the envelope and refused this message's content (one recipient
            # a message): the message's matter, like a refused recipient. The connection
            # stays (the envelope was reset), and it must not count against the
            # provider: one message retried to maxRetries would otherwise open the breaker.
            raise ProviderError(
                f"SMTP {exc.code}: {exc.message}", retryable=400 <= exc.code < 500,
                recipient=True,
            ) from None  # fmt: skip
        except aiosmtplib.SMTPResponseException as exc:
            _discard(client)
            client = None
            raise ProviderError(
                f"SMTP {exc.code}: {exc.message}", retryable=400 <= exc.code < 500
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            _discard(client)
            client = None
            if data_sent:  # the server may have taken it: a retry can be a second copy
                raise ProviderError(
                    f"SMTP outcome unknown (no reply to DATA: {exc}); sent again with the "
                    f"same Message-ID", retryable=True,
                ) from None  # fmt: skip
            raise ProviderError(f"SMTP unreachable: {exc}", retryable=True) from None
        finally:
            self._idle.put_nowait(client)
        return message.message_id.strip("<>")

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()


async def _reset(client: aiosmtplib.SMTP) -> None:
    # A server that is closing fails this too; the caller's error already says so.
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.rset()


def _discard(client: aiosmtplib.SMTP | None) -> None:
    if client is not None:
        client.close()
