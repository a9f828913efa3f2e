"""SendGrid v3 `POST /v3/mail/send` over httpx (the SDK is synchronous, without a timeout).

The 202's `X-Message-Id` is stored; the `sg_message_id` of its webhook events starts with
it. `custom_args` carry only our ids.
"""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any

import httpx

from mysetlist.notify.providers.base import (
    EmailMessage,
    Gate,
    ProviderError,
    http_status_retryable,
)


def _address(value: str) -> dict[str, str]:
    name, email = parseaddr(value)
    return {"email": email, "name": name} if name else {"email": email}


class SendGridProvider:
    name = "sendgrid"

    def __init__(self, api_url: str, api_key: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=api_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    async def send(self, message: EmailMessage, *, gate: Gate | None = None) -> str:
        if gate is not None:
            await gate()
        body: dict[str, Any] = {
            "personalizations": [{"to": [{"email": message.to}]}],
            "from": _address(message.sender),
            "subject": message.subject,
            "content": [
                {"type": "text/plain", "value": message.text},
                {"type": "text/html", "value": message.html},
            ],
            "headers": message.headers or None,
            "custom_args": message.tags or None,
            "categories": [message.category] if message.category else None,
        }
        body = {k: v for k, v in body.items() if v is not None}
        try:
            response = await self._client.post("/v3/mail/send", json=body)
        except httpx.HTTPError as exc:
            raise ProviderError(f"SendGrid unreachable: {exc!r}", retryable=True) from None
        if response.status_code != 202:
            retry_after = response.headers.get("retry-after")
            raise ProviderError(
                f"SendGrid {response.status_code}: {response.text[:200]}",
                retryable=http_status_retryable(response.status_code),
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        return str(response.headers.get("x-message-id", ""))

    async def close(self) -> None:
        await self._client.aclose()
