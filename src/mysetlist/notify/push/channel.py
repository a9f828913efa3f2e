"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291): pywebpush
encrypts, py-vapid signs, and the POST is ours, on one aiohttp session per process, so
that (issue 15) redirects are never followed, the connection goes only to addresses
checked public at that instant (`endpoints.CheckingResolver`), and the endpoint's
URL is checked again at each send (`endpoints.EndpointPolicy`).

pywebpush's pitfalls, avoided here: it writes `aud`/`exp` into the claims dict it is given
(every call here gets a fresh one); its TTL defaults to 0 (dropped unless the browser is
online right now) and its timeout to none; a payload over 3,993 bytes no longer fits a
4,096-byte record.

Any exception while pushing to one subscription (a refused address, a library error such
as VapidException, a broken stored subscription) fails only that push: the drain records
every other outcome of its chunk.

A push delivery goes to each live subscription of the user. 404/410 from the push service
deletes the subscription, 429 retries after its Retry-After, 5xx and timeouts retry; a
subscription without a success for `NOTIFY_PUSH_IDLE_DAYS` expires.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid, Vapid01
from pywebpush import WebPusher

from mysetlist.core.db import read_sql
from mysetlist.notify import metrics
from mysetlist.notify.config import NotifySettings
from mysetlist.notify.delivery.channels import DeliveryContext, Outcome, Row, describe
from mysetlist.notify.push.endpoints import CheckingResolver, EndpointPolicy, EndpointRefused

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.notify.push"
MAX_PAYLOAD_BYTES = 3993
SUBSCRIPTION_CONTEXT = b"push_subscriptions.subscription"
# RFC 8292: at most 24 h; 12 h as pywebpush does.
VAPID_LIFETIME_SECONDS = 12 * 3600


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def generate_vapid_keys() -> tuple[str, str]:
    """(VAPID_PRIVATE_KEY: the raw 32-byte scalar, base64url — not PEM, which pywebpush's
    string loader refuses; applicationServerKey for browsers: the uncompressed point)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(private), _b64url(public)


def payload(row: Row) -> bytes:
    """The JSON the service worker receives, cut to fit: `data` goes first, then the
    message is shortened."""
    body: dict[str, Any] = {
        "notificationId": row["notification_id"],
        "type": row["type"],
        "title": row["title"],
        "body": row["message"],
        "data": row["data"] or {},
    }
    encoded = orjson.dumps(body)
    if len(encoded) > MAX_PAYLOAD_BYTES:
        body["data"] = {}
        encoded = orjson.dumps(body)
    for name in ("body", "title"):
        while len(encoded) > MAX_PAYLOAD_BYTES and body[name]:
            # Cut in UTF-8 bytes (what the limit counts), never inside a character.
            raw = body[name].removesuffix("…").encode()
            kept = raw[: max(0, len(raw) - (len(encoded) - MAX_PAYLOAD_BYTES) - 3)]
            text = kept.decode(errors="ignore")
            body[name] = text + "…" if text else ""
            encoded = orjson.dumps(body)
    return encoded


@dataclass
class _Result:
    subscription_id: int
    ok: bool = False
    gone: bool = False
    retryable: bool = False
    retry_after: float | None = None
    error: str | None = None


def _retry_after(value: str | None) -> float | None:
    return float(value) if value and value.isdigit() else None


class PushChannel:
    name = "push"

    def __init__(self, settings: NotifySettings) -> None:
        if not settings.vapid_private_key or not settings.vapid_subject:
            raise ValueError("web push needs VAPID_PRIVATE_KEY and VAPID_SUBJECT")
        self.settings = settings
        self.subject = settings.vapid_subject
        self.vapid: Vapid01 = Vapid.from_string(private_key=settings.vapid_private_key)
        self.policy = EndpointPolicy.from_settings(settings)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=CheckingResolver(self.policy)),
                timeout=aiohttp.ClientTimeout(total=self.settings.provider_timeout_seconds),
            )
        return self._session

    def _request(self, info: dict[str, Any], data: bytes) -> tuple[bytes, dict[str, str]]:
        """The encrypted body and headers of one push."""
        endpoint = urlsplit(info["endpoint"])
        body = WebPusher(info).encode(data, "aes128gcm")["body"]
        claims = {"sub": self.subject, "aud": f"{endpoint.scheme}://{endpoint.netloc}",
                  "exp": int(time.time()) + VAPID_LIFETIME_SECONDS}  # fmt: skip
        headers = {
            **self.vapid.sign(claims),
            "Content-Encoding": "aes128gcm",
            "TTL": str(self.settings.push_ttl_seconds),
            "Urgency": "normal",
        }
        return body, headers

    async def _send(self, subscription_id: int, info: dict[str, Any], data: bytes) -> _Result:
        result = _Result(subscription_id)
        try:
            self.policy.check_url(info["endpoint"])
            body, headers = self._request(info, data)
            async with self._client().post(
                info["endpoint"], data=body, headers=headers, allow_redirects=False
            ) as response:
                status, retry_after = response.status, response.headers.get("Retry-After")
        except EndpointRefused as exc:
            result.error = f"endpoint refused: {exc}"
            return result
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, EndpointRefused):  # the resolver's check, at connect
                result.error = f"endpoint refused: {exc.os_error}"
            else:
                result.error = f"push service unreachable: {type(exc).__name__}"
                result.retryable = True
            return result
        except (aiohttp.ClientError, TimeoutError) as exc:
            result.error = f"push service unreachable: {type(exc).__name__}"
            result.retryable = True
            return result
        except Exception as exc:
            log.warning("push to subscription %s failed", subscription_id, exc_info=True)
            result.error = f"push failed: {describe(exc)}"
            return result
        if status in (200, 201, 202):
            result.ok = True
        elif 300 <= status < 400:
            result.error = f"push service {status}: redirects are not followed"
        else:
            result.error = f"push service {status}"
            if status in (404, 410):
                result.gone = True
            elif status == 429 or status >= 500:
                result.retryable = True
                result.retry_after = _retry_after(retry_after)
        return result

    async def _push_or_fail(self, sub: Row, data: bytes, ctx: DeliveryContext) -> _Result:
        """One push to one stored subscription; a subscription that no longer decrypts
        (or is not one) fails alone."""
        try:
            info = orjson.loads(
                ctx.cipher.decrypt(bytes(sub["subscription_encrypted"]),
                                   context=SUBSCRIPTION_CONTEXT)
            )  # fmt: skip
            if not isinstance(info, dict) or not isinstance(info.get("endpoint"), str):
                raise ValueError("not a subscription")
        except Exception as exc:
            return _Result(sub["id"], error=f"stored subscription unreadable: {describe(exc)}")
        return await self._send(sub["id"], info, data)

    async def deliver(self, rows: Sequence[Row], ctx: DeliveryContext) -> list[Outcome]:
        subscriptions = await ctx.fetch_all(
            read_sql(_PACKAGE, "subscriptions_live.sql"),
            {"user_ids": sorted({str(r["user_id"]) for r in rows}),
             "idle_days": self.settings.push_idle_days},
        )  # fmt: skip
        by_user: dict[str, list[Row]] = {}
        for sub in subscriptions:
            by_user.setdefault(str(sub["user_id"]), []).append(sub)
        calls: list[tuple[int, Awaitable[_Result]]] = []
        for row in rows:
            data = payload(row)
            for sub in by_user.get(str(row["user_id"]), []):
                calls.append((row["id"], self._push_or_fail(sub, data, ctx)))
        results = await asyncio.gather(*(call for _, call in calls))
        per_row: dict[int, list[_Result]] = {}
        for (delivery_id, _), result in zip(calls, results, strict=True):
            per_row.setdefault(delivery_id, []).append(result)
        touched = [r for r in results if not r.gone]
        try:
            await ctx.execute(
                read_sql(_PACKAGE, "subscription_results.sql"),
                {"gone_ids": [r.subscription_id for r in results if r.gone],
                 "ids": [r.subscription_id for r in touched], "ok": [r.ok for r in touched]},
            )  # fmt: skip
        except Exception:
            # Bookkeeping only: the pushes went, and their outcomes must still commit.
            log.exception("cannot record push subscription results")
        return [self._outcome(row["id"], per_row.get(row["id"], [])) for row in rows]

    def _outcome(self, delivery_id: int, results: list[_Result]) -> Outcome:
        if not results:
            return Outcome(delivery_id, "failed", error="no live push subscription",
                           attempted=False)  # fmt: skip
        if any(r.ok for r in results):
            # Sent to at least one browser; the others are not retried (a retry of the
            # delivery would push to that browser again).
            metrics.DELIVERIES.labels("push", "webpush", "sent").inc()
            return Outcome(delivery_id, "sent", provider="webpush")
        metrics.DELIVERIES.labels("push", "webpush", "error").inc()
        errors = "; ".join(sorted({r.error or "" for r in results}))
        retryable = [r for r in results if r.retryable]
        if retryable:
            waits = [r.retry_after for r in retryable if r.retry_after is not None]
            return Outcome(delivery_id, "deferred", provider="webpush", error=errors,
                           retryable=True, retry_after=max(waits) if waits else None)  # fmt: skip
        return Outcome(delivery_id, "failed", provider="webpush", error=errors)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
