"""Provider events (SendGrid's event webhook, SES events over SNS) read into one shape and
applied once: each event's key is claimed in `notify.webhook_events` in the transaction
that moves the delivery, so a retried or replayed event changes nothing.

Permanent bounces and complaints put the address (its keyed hash) on the suppression list
that every later send checks; transient bounces, blocks and deferrals do not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from mysetlist.core.db import fetch_all_in, read_sql
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.notify.delivery.suppression import suppress

_PACKAGE = "mysetlist.notify.webhooks"
_SENDGRID_STATUS = {
    "delivered": "delivered",
    "bounce": "bounced",
    "dropped": "dropped",
    "spamreport": "complained",
    "open": "opened",
    "click": "clicked",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
    "deferred": "deferred",
}
_SES_STATUS = {
    "Delivery": "delivered",
    "Bounce": "bounced",
    "Complaint": "complained",
    "Open": "opened",
    "Click": "clicked",
    "Reject": "dropped",
    "DeliveryDelay": "deferred",
    "Subscription": "unsubscribed",
}


@dataclass(frozen=True)
class ProviderEvent:
    keys: tuple[str, ...]  # any one already claimed = a repeat
    status: str
    delivery_id: int | None
    message_id: str | None
    at: datetime
    addresses: tuple[str, ...] = ()  # to suppress (permanent bounce, complaint)
    machine_open: bool = False
    detail: str | None = None


def _int_or_none(value: Any) -> int | None:
    text = str(value) if value is not None else ""
    return int(text) if text.isdigit() and len(text) < 19 else None


def sendgrid_events(payload: Any) -> list[ProviderEvent]:
    """SendGrid's JSON array; events we do not track (processed, group_resubscribe) skipped."""
    if not isinstance(payload, list):
        raise ValueError("expected a JSON array of events")
    events = []
    for item in payload:
        if not isinstance(item, dict) or item.get("event") not in _SENDGRID_STATUS:
            continue
        kind = str(item["event"])
        message_id = str(item.get("sg_message_id") or "")
        timestamp = _int_or_none(item.get("timestamp")) or 0
        # Retries have been seen with new sg_event_ids: the fallback key names the event
        # by what it is about.
        fallback = hashlib.sha256(
            "\x1f".join([message_id, kind, str(timestamp), str(item.get("url") or "")]).encode()
        ).hexdigest()
        keys = [f"fallback:{fallback}"]
        if item.get("sg_event_id"):
            keys.append(f"id:{item['sg_event_id']}")
        status = _SENDGRID_STATUS[kind]
        # "blocked" is SendGrid's temporary refusal; "bounce" is the hard one.
        permanent = (kind == "bounce" and item.get("type") != "blocked") or kind == "spamreport"
        email = str(item.get("email") or "")
        events.append(
            ProviderEvent(
                keys=tuple(keys),
                status=status,
                delivery_id=_int_or_none(item.get("delivery_id")),
                # sg_message_id is the 202's X-Message-Id followed by ".filter…".
                message_id=message_id.split(".", 1)[0] or None,
                at=datetime.fromtimestamp(timestamp, UTC) if timestamp else datetime.now(UTC),
                addresses=(email,) if permanent and email else (),
                machine_open=bool(item.get("sg_machine_open")),
                detail=str(item.get("reason") or item.get("response") or "")[:500] or None,
            )
        )
    return events


def _addresses(recipients: Any) -> tuple[str, ...]:
    return tuple(
        str(r["emailAddress"])
        for r in recipients or []
        if isinstance(r, dict) and r.get("emailAddress")
    )


def ses_event(sns_message_id: str, message: Any) -> ProviderEvent:
    """An SES event (the SNS message's Message, parsed). Types we do not track are
    'ignored' but still claim the MessageId, so their replay is recognised too."""
    if not isinstance(message, dict):
        message = {}
    kind = message.get("eventType") or message.get("notificationType")
    if kind not in _SES_STATUS:
        return ProviderEvent((f"sns:{sns_message_id}",), "ignored", None, None, datetime.now(UTC))
    mail = message.get("mail") or {}
    tags = mail.get("tags") or {}
    tagged = tags.get("delivery_id") or [None]
    addresses: tuple[str, ...] = ()
    detail = None
    if kind == "Bounce":
        bounce = message.get("bounce") or {}
        detail = f"{bounce.get('bounceType')}/{bounce.get('bounceSubType')}"
        if bounce.get("bounceType") == "Permanent":
            addresses = _addresses(bounce.get("bouncedRecipients"))
    elif kind == "Complaint":
        complaint = message.get("complaint") or {}
        addresses = _addresses(complaint.get("complainedRecipients"))
    try:
        at = datetime.fromisoformat(str(mail.get("timestamp")).replace("Z", "+00:00"))
    except ValueError:
        at = datetime.now(UTC)
    return ProviderEvent(
        keys=(f"sns:{sns_message_id}",),
        status=_SES_STATUS[kind],
        delivery_id=_int_or_none(tagged[0]),
        message_id=str(mail.get("messageId") or "") or None,
        at=at,
        addresses=addresses,
        detail=detail,
    )


async def apply(
    conn: AsyncConnection[Any], source: str, event: ProviderEvent, cipher: FieldCipher
) -> bool:
    """Apply `event` unless one of its keys was seen; whether it was applied."""
    claimed = await fetch_all_in(
        conn, read_sql(_PACKAGE, "event_claim.sql"),
        {"source": source, "event_keys": list(event.keys)},
    )  # fmt: skip
    if len(claimed) < len(event.keys):
        return False
    if event.status == "ignored":
        return True
    await conn.execute(
        read_sql(_PACKAGE, "delivery_event.sql"),
        {
            "delivery_id": event.delivery_id,
            "message_id": event.message_id,
            "status": event.status,
            "at": event.at,
            "machine_open": event.machine_open,
            "detail": event.detail,
        },
    )
    if event.addresses:
        reason = "complaint" if event.status == "complained" else "bounce"
        await suppress(
            conn, [cipher.lookup_hash(a) for a in event.addresses],
            reason=reason, source=source, detail=event.detail,
        )  # fmt: skip
    return True
