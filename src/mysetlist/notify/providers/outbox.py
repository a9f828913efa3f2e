"""A local outbox: each email becomes one RFC 5322 file (`.eml`) in a directory.

For a demo or a development machine with no mail server: nothing leaves the machine, and
every message can be opened with a mail client or read with `email.message_from_bytes`.
The message is the one SMTP would send (`smtp.to_mime`). The files hold addresses and
message text, so the directory and the files are readable by their owner only. The
provider's message id is the file's name.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from mysetlist.notify.providers.base import EmailMessage, Gate, ProviderError
from mysetlist.notify.providers.smtp import to_mime


class OutboxProvider:
    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _write(self, file_name: str, data: bytes) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        final = self.directory / file_name
        partial = self.directory / f".{file_name}.partial"
        # Written aside, then renamed: a reader never sees half a message.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(partial, final)

    async def send(self, message: EmailMessage, *, gate: Gate | None = None) -> str:
        unique = uuid.uuid4().hex
        data = to_mime(message)
        file_name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{message.delivery_id}-{unique[:8]}.eml"
        if gate is not None:
            await gate()
        try:
            await asyncio.to_thread(self._write, file_name, data)
        except OSError as exc:  # a full disk or a lost mount may pass
            raise ProviderError(f"outbox {self.directory}: {exc}", retryable=True) from None
        return file_name

    async def close(self) -> None:
        return None
