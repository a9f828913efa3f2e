"""Provider webhooks: `POST /api/webhooks/sendgrid` (Signed Event Webhook) and
`POST /api/webhooks/ses` (SES events over Amazon SNS).

A request that is not genuine and fresh (forged, tampered, stale) is a 4xx and changes
nothing. One whose every event was already applied (a replay) is a 409 and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Request

from mysetlist.core.audit import audit_request
from mysetlist.core.errors import Problem, problem_responses
from mysetlist.core.runtime import RuntimeDep
from mysetlist.core.security_events import count_security_event
from mysetlist.notify.config import NotifySettings, load_notify_settings
from mysetlist.notify.webhooks import events as webhook_events
from mysetlist.notify.webhooks.api_models import (
    SesWebhookAnswer,
    SnsSubscriptionConfirmed,
    SnsUnsubscribed,
    WebhookApplied,
)
from mysetlist.notify.webhooks.signatures import (
    SENDGRID_SIGNATURE,
    SENDGRID_TIMESTAMP,
    Fetch,
    SnsVerifier,
    WebhookRejected,
    fetch_over_https,
    load_sendgrid_key,
    verify_sendgrid,
)

router = APIRouter(tags=["webhooks"], responses=problem_responses(401, 403, 404, 409, 413, 429))
# The bodies are read raw (signatures cover the exact bytes), so the schema declares them here.
_SENDGRID_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "array", "items": {"type": "object"},
    "description": "SendGrid Event Webhook events, signed (X-Twilio-Email-Event-Webhook-*)",
}}}}}  # fmt: skip
_SNS_BODY = {"requestBody": {"required": True, "content": {"text/plain": {"schema": {
    "type": "string", "description": "an Amazon SNS message (JSON, signed), as SNS posts it",
}}}}}  # fmt: skip


@dataclass
class WebhookVerifiers:
    """Built once per app from NotifySettings; `app.state.notify_webhooks` (tests set one
    with their own certificate fetcher before serving)."""

    sendgrid_key: ec.EllipticCurvePublicKey | None
    sns: SnsVerifier
    fetch: Fetch

    @classmethod
    def from_settings(cls, settings: NotifySettings, fetch: Fetch = fetch_over_https) -> Any:
        hosts = settings.sns_allowed_cert_hosts or [f"sns.{settings.aws_region}.amazonaws.com"]
        key = settings.sendgrid_webhook_public_key
        return cls(
            load_sendgrid_key(key) if key else None,
            SnsVerifier(hosts, settings.sns_topic_arns, fetch),
            fetch,
        )


def _verifiers(request: Request) -> WebhookVerifiers:
    state = request.app.state
    if getattr(state, "notify_webhooks", None) is None:
        state.notify_webhooks = WebhookVerifiers.from_settings(load_notify_settings())
    verifiers: WebhookVerifiers = state.notify_webhooks
    return verifiers


async def _rejected(request: Request, exc: WebhookRejected, source: str) -> Problem:
    count_security_event("webhook_signature", source)
    # In the audit trail too (the dashboard's security panel reads it), awaited: a flood of
    # forged webhooks writes no faster than it is answered.
    await audit_request(
        request, "security.webhook_signature", actor=None, outcome="denied",
        details={"source": source, "status": exc.status, "reason": exc.reason},
    )  # fmt: skip
    titles = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}
    return Problem(exc.status, titles.get(exc.status, "Bad Request"), exc.reason)


def _answer(applied: int, repeated: int) -> WebhookApplied:
    if repeated and not applied:
        raise Problem(409, "Conflict", "every event in this request was already applied")
    return WebhookApplied(applied=applied, repeated=repeated)


@router.post("/api/webhooks/sendgrid", openapi_extra=_SENDGRID_BODY)
async def sendgrid_webhook(request: Request, runtime: RuntimeDep) -> WebhookApplied:
    verifiers = _verifiers(request)
    if verifiers.sendgrid_key is None:
        raise Problem(404, "Not Found", "the SendGrid webhook is not configured")
    raw = await request.body()  # the signature covers these exact bytes
    try:
        verify_sendgrid(
            verifiers.sendgrid_key,
            request.headers.get(SENDGRID_SIGNATURE),
            request.headers.get(SENDGRID_TIMESTAMP),
            raw,
        )
        events = webhook_events.sendgrid_events(orjson.loads(raw))
    except WebhookRejected as exc:
        raise await _rejected(request, exc, "sendgrid") from None
    except ValueError:  # orjson.JSONDecodeError included
        raise Problem(400, "Bad Request", "expected a JSON array of events") from None
    applied = 0
    async with runtime.db.transaction() as conn:
        for event in events:
            applied += await webhook_events.apply(conn, "sendgrid", event, runtime.cipher)
    return _answer(applied, len(events) - applied)


@router.post("/api/webhooks/ses", openapi_extra=_SNS_BODY, response_model=SesWebhookAnswer)
async def ses_webhook(request: Request, runtime: RuntimeDep) -> SesWebhookAnswer:
    """Amazon SNS posts JSON as text/plain; the content type is not trusted either way."""
    verifiers = _verifiers(request)
    try:
        message = await verifiers.sns.verify(await request.body())
    except WebhookRejected as exc:
        raise await _rejected(request, exc, "ses") from None
    if message["Type"] == "SubscriptionConfirmation":
        # Visiting SubscribeURL (checked to be on the allowed SNS host) confirms it.
        try:
            await verifiers.fetch(message["SubscribeURL"])
        except Exception:
            raise Problem(502, "Bad Gateway", "could not confirm the subscription") from None
        return SnsSubscriptionConfirmed(confirmed=True)
    if message["Type"] == "UnsubscribeConfirmation":
        return SnsUnsubscribed()
    try:
        inner = orjson.loads(message["Message"])
    except orjson.JSONDecodeError:
        inner = None
    event = webhook_events.ses_event(message["MessageId"], inner)
    async with runtime.db.transaction() as conn:
        applied = await webhook_events.apply(conn, "ses", event, runtime.cipher)
    return _answer(int(applied), int(not applied))
