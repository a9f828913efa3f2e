"""Verifying provider webhooks before anything is read from them.

- SendGrid Signed Event Webhook: ECDSA P-256/SHA-256 over the timestamp header followed by
  the raw body bytes (re-serialised JSON would not verify), public key from
  SENDGRID_WEBHOOK_PUBLIC_KEY (base64 DER SPKI, or PEM); older than 5 minutes is stale.
- Amazon SNS (SES events): SignatureVersion 1 (SHA1withRSA) or 2 (SHA256withRSA) over the
  exact "Key\\nValue\\n" string of the message type's fields; the signing certificate must
  come over https from an allowed `sns.<region>.amazonaws.com` host; the TopicArn must be
  allow-listed. The certificate fetcher is a parameter (tests serve their own).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
SENDGRID_MAX_AGE_SECONDS = 300
# SNS retries a failed delivery for up to about an hour with the original signature.
SNS_MAX_AGE_SECONDS = 3600
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]{3,}\.amazonaws\.com(\.cn)?$")
_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
_SNS_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "1": hashes.SHA1,
    "2": hashes.SHA256,
}

Fetch = Callable[[str], Awaitable[bytes]]


class WebhookRejected(Exception):
    """The request is not a genuine, fresh provider message: answer 4xx, change nothing."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def load_sendgrid_key(configured: str) -> ec.EllipticCurvePublicKey:
    text = configured.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
    else:
        key = serialization.load_der_public_key(base64.b64decode(text))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("SENDGRID_WEBHOOK_PUBLIC_KEY is not an EC public key")
    return key


def verify_sendgrid(
    key: ec.EllipticCurvePublicKey,
    signature: str | None,
    timestamp: str | None,
    raw_body: bytes,
    *,
    now: float | None = None,
) -> None:
    if not signature or not timestamp:
        raise WebhookRejected(401, "missing signature headers")
    if not timestamp.isdigit():
        raise WebhookRejected(401, "bad timestamp")
    age = (now if now is not None else time.time()) - int(timestamp)
    # Also refused: a timestamp from the future beyond clock skew.
    if age > SENDGRID_MAX_AGE_SECONDS or age < -SENDGRID_MAX_AGE_SECONDS:
        raise WebhookRejected(401, "stale timestamp")
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, timestamp.encode() + raw_body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise WebhookRejected(401, "bad signature") from None


async def fetch_over_https(url: str) -> bytes:
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.content


def _allowed_sns_url(url: str, allowed_hosts: list[str], *, pem: bool) -> bool:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:  # a malformed host or port
        return False
    return (
        parts.scheme == "https"
        and port in (None, 443)
        and bool(_SNS_HOST.match(host))
        and host in allowed_hosts
        and (not pem or parts.path.endswith(".pem"))
    )


def sns_string_to_sign(message: dict[str, Any]) -> bytes:
    fields = _SNS_FIELDS[message["Type"]]
    lines = []
    for name in fields:
        if name == "Subject" and name not in message:
            continue  # the one optional field: absent, not empty
        lines.append(f"{name}\n{message[name]}\n")
    return "".join(lines).encode()


class SnsVerifier:
    """Verifies SNS messages; certificates are cached per URL."""

    def __init__(
        self, allowed_hosts: list[str], topic_arns: list[str], fetch: Fetch = fetch_over_https
    ) -> None:
        self.allowed_hosts = [h.lower() for h in allowed_hosts]
        self.topic_arns = set(topic_arns)
        self.fetch = fetch
        self._certificates: dict[str, rsa.RSAPublicKey] = {}

    async def _public_key(self, url: str) -> rsa.RSAPublicKey:
        if url not in self._certificates:
            try:
                certificate = x509.load_pem_x509_certificate(await self.fetch(url))
            except Exception:
                raise WebhookRejected(400, "signing certificate unavailable") from None
            key = certificate.public_key()
            if not isinstance(key, rsa.RSAPublicKey):
                raise WebhookRejected(400, "signing certificate is not RSA")
            self._certificates[url] = key
        return self._certificates[url]

    async def verify(self, raw_body: bytes, *, now: datetime | None = None) -> dict[str, Any]:
        """The verified message; raises WebhookRejected."""
        try:
            message = orjson.loads(raw_body)
        except orjson.JSONDecodeError:
            raise WebhookRejected(400, "body is not JSON") from None
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("Type"), str)
            or (message["Type"] not in _SNS_FIELDS)
        ):
            raise WebhookRejected(400, "not an SNS message")
        required = [f for f in _SNS_FIELDS[message["Type"]] if f != "Subject"]
        required += ["Signature", "SignatureVersion", "SigningCertURL"]
        if any(not isinstance(message.get(f), str) for f in required):
            raise WebhookRejected(400, "SNS message lacks fields")
        if message["TopicArn"] not in self.topic_arns:
            raise WebhookRejected(403, "topic not allowed")
        algorithm = _SNS_HASHES.get(message["SignatureVersion"])
        if algorithm is None:
            raise WebhookRejected(400, "unknown SignatureVersion")
        if not _allowed_sns_url(message["SigningCertURL"], self.allowed_hosts, pem=True):
            raise WebhookRejected(403, "certificate URL not allowed")
        try:
            sent_at = datetime.fromisoformat(message["Timestamp"].replace("Z", "+00:00"))
            signature = base64.b64decode(message["Signature"], validate=True)
        except (ValueError, binascii.Error):
            raise WebhookRejected(400, "bad Timestamp or Signature") from None
        if sent_at.tzinfo is None:  # SNS always says UTC ("Z"); without a zone, no age
            raise WebhookRejected(400, "Timestamp without a time zone")
        age = ((now or datetime.now(UTC)) - sent_at).total_seconds()
        if age > SNS_MAX_AGE_SECONDS or age < -300:
            raise WebhookRejected(401, "stale message")
        key = await self._public_key(message["SigningCertURL"])
        try:
            key.verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise WebhookRejected(401, "bad signature") from None
        if "SubscribeURL" in message and not _allowed_sns_url(
            message["SubscribeURL"], self.allowed_hosts, pem=False
        ):
            raise WebhookRejected(403, "subscribe URL not allowed")
        return dict(message)
