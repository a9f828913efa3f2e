"""Amazon SES v2 `send_email` (boto3, in a thread: boto3 is synchronous)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mysetlist.notify.providers.base import (
    EmailMessage,
    Gate,
    ProviderError,
    http_status_retryable,
)

_TAG_VALUE = re.compile(r"[^A-Za-z0-9_-]")
_PERMANENT_CODES = {"MessageRejected", "MailFromDomainNotVerifiedException", "BadRequestException"}


class SesProvider:
    name = "ses"

    def __init__(
        self,
        region: str,
        *,
        endpoint_url: str | None = None,
        configuration_set: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._client: Any = boto3.client(
            "sesv2",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(
                connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}
            ),
        )
        self._configuration_set = configuration_set

    def _send_sync(self, message: EmailMessage) -> str:
        request: dict[str, Any] = {
            "FromEmailAddress": message.sender,
            "Destination": {"ToAddresses": [message.to]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": message.text, "Charset": "UTF-8"},
                        "Html": {"Data": message.html, "Charset": "UTF-8"},
                    },
                    "Headers": [{"Name": k, "Value": v} for k, v in message.headers.items()],
                }
            },
            "EmailTags": [
                {"Name": k, "Value": _TAG_VALUE.sub("_", v)[:256]} for k, v in message.tags.items()
            ],
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        try:
            response = self._client.send_email(**request)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
            retryable = code not in _PERMANENT_CODES and http_status_retryable(status)
            raise ProviderError(f"SES {status} {code}", retryable=retryable) from None
        except BotoCoreError as exc:
            raise ProviderError(f"SES unreachable: {exc}", retryable=True) from None
        return str(response["MessageId"])

    async def send(self, message: EmailMessage, *, gate: Gate | None = None) -> str:
        if gate is not None:
            await gate()
        return await asyncio.to_thread(self._send_sync, message)

    async def close(self) -> None:
        self._client.close()
