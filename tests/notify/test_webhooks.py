"""Provider webhooks against a real API: SendGrid's Signed Event Webhook and SES events over
Amazon SNS, each signed here with the test's own keys (an EC P-256 key; an RSA key with a
self-signed certificate served by the injected certificate fetcher).

Genuine events move the delivery's status machine once; permanent bounces and complaints
suppress the address for every later send; forged, tampered, stale and replayed requests
get a 4xx and change nothing."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery.drain import Deliverer
from mysetlist.notify.webhooks.routes import WebhookVerifiers
from mysetlist.notify.webhooks.signatures import SnsVerifier, sns_string_to_sign
from tests.conftest import serve_app
from tests.notify.conftest import SmtpSink

pytestmark = pytest.mark.db

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
SUBSCRIBE_URL = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t0k"


def _self_signed(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


class Keys:
    def __init__(self) -> None:
        self.sendgrid = ec.generate_private_key(ec.SECP256R1())
        self.sns = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.certificate = _self_signed(self.sns)
        self.fetched: list[str] = []

    async def fetch(self, url: str) -> bytes:
        """The injected fetcher: our certificate at CERT_URL; records subscription visits."""
        self.fetched.append(url)
        if url == CERT_URL:
            return self.certificate
        if url == SUBSCRIBE_URL:
            return b"<ConfirmSubscriptionResponse/>"
        raise AssertionError(f"unexpected fetch of {url}")


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def webhook_api(settings: Settings, database_url: str, redis_url: str, keys: Keys) -> Iterator[str]:
    """An API whose webhook verifiers hold the test's keys and certificate fetcher."""
    from mysetlist.api import create_app

    app = create_app(settings, database_url, redis_url, with_worker=False)
    app.state.notify_webhooks = WebhookVerifiers(
        keys.sendgrid.public_key(),
        SnsVerifier(["sns.us-east-1.amazonaws.com"], [TOPIC], keys.fetch),
        keys.fetch,
    )
    with serve_app(app) as url:
        yield url


def sendgrid_request(
    key: ec.EllipticCurvePrivateKey, events: list[dict[str, Any]], *, at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(events) + b"\r\n"  # the raw bytes are signed, trailing CRLF included
    timestamp = str(int(at if at is not None else time.time()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return body, {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


def sns_message(
    key: rsa.RSAPrivateKey, message_type: str, message: str, *, version: str = "2",
    at: datetime | None = None, subject: str | None = None, **overrides: str,
) -> dict[str, str]:  # fmt: skip
    body = {
        "Type": message_type,
        "MessageId": str(uuid.uuid4()),
        "TopicArn": TOPIC,
        "Message": message,
        "Timestamp": (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
    }
    if subject is not None:
        body["Subject"] = subject
    if message_type != "Notification":
        body["SubscribeURL"] = SUBSCRIBE_URL
        body["Token"] = "t0k"
    body.update(overrides)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(sns_string_to_sign(body), padding.PKCS1v15(), algorithm)
    body["Signature"] = base64.b64encode(signature).decode()
    return body


def ses_event(delivery: dict[str, Any], event_type: str, **detail: Any) -> str:
    return orjson.dumps(
        {
            "eventType": event_type,
            "mail": {
                "timestamp": datetime.now(UTC).isoformat(),
                "messageId": delivery["provider_message_id"],
                "tags": {"delivery_id": [str(delivery["id"])]},
            },
            **detail,
        }
    ).decode()


async def post_sns(api: str, body: dict[str, str] | bytes) -> httpx.Response:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    async with httpx.AsyncClient(base_url=api) as client:
        return await client.post(
            "/api/webhooks/ses", content=raw,
            headers={"Content-Type": "text/plain; charset=UTF-8",
                     "x-amz-sns-message-type": "Notification"},
        )  # fmt: skip


async def post_sendgrid(api: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=api) as client:
        return await client.post("/api/webhooks/sendgrid", content=body, headers=headers)


async def sent_email(
    api: str, token_for: Any, make_users: Any, runtime: Runtime, deliverer: Deliverer
) -> tuple[Any, dict[str, Any]]:
    """A user and their email delivery, sent through the pipeline into the sink."""
    (user,) = await make_users(1)
    async with httpx.AsyncClient(base_url=api) as client:
        r = await client.post(
            "/api/notifications/send",
            json={"userId": user.id, "type": "vote_activity", "title": "Results",
                  "message": "m", "channels": ["email"]},
            headers={"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"},
        )  # fmt: skip
        assert r.status_code == 202, r.text
    await deliverer.drain(runtime.db)
    return user, await delivery_of(runtime, user.id)


async def delivery_of(runtime: Runtime, user_id: str) -> dict[str, Any]:
    rows = await runtime.db.fetch_all(
        """SELECT * FROM notify.notification_delivery WHERE user_id = %s AND channel = 'email'
           ORDER BY id""",
        (user_id,),
    )
    return dict(rows[-1])


async def world(runtime: Runtime, delivery_id: int) -> tuple[Any, ...]:
    """What a rejected request must not change: the delivery, suppressions, event keys."""
    row = await runtime.db.fetch_one(
        "SELECT * FROM notify.notification_delivery WHERE id = %s", (delivery_id,)
    )
    counts = await runtime.db.fetch_one(
        """SELECT (SELECT count(*) FROM notify.suppressions) AS suppressions,
                  (SELECT count(*) FROM notify.webhook_events) AS events"""
    )
    return row, counts


async def is_suppressed(runtime: Runtime, address: str) -> bool:
    row = await runtime.db.fetch_one(
        "SELECT 1 FROM notify.suppressions WHERE address_hash = %s",
        (runtime.cipher.lookup_hash(address),),
    )
    return row is not None


def sg_event(delivery: dict[str, Any], event: str, email: str, **fields: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": int(time.time()),
        "event": event,
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": f"{delivery['provider_message_id']}.filterdrecv-1.0",
        "delivery_id": str(delivery["id"]),
        "notification_id": str(delivery["notification_id"]),
        **fields,
    }


async def test_sendgrid_events_move_the_status_machine_once(
    webhook_api: str, keys: Keys, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    user, delivery = await sent_email(webhook_api, token_for, make_users, runtime, deliverer)
    assert delivery["status"] == "sent"
    delivered = sg_event(delivery, "delivered", user.email)
    opened = sg_event(delivery, "open", user.email, sg_machine_open=True)
    clicked = sg_event(delivery, "click", user.email, url="https://mysetlist.example/x")
    body, headers = sendgrid_request(keys.sendgrid, [delivered, opened, clicked])
    r = await post_sendgrid(webhook_api, body, headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"applied": 3, "repeated": 0}
    row = await delivery_of(runtime, user.id)
    assert row["status"] == "clicked"
    assert (row["open_count"], row["click_count"], row["machine_open"]) == (1, 1, True)
    assert None not in (row["delivered_at"], row["opened_at"], row["clicked_at"])

    # A late 'delivered' never moves the status back.
    late = sg_event(delivery, "delivered", user.email, timestamp=int(time.time()) + 1)
    r = await post_sendgrid(webhook_api, *sendgrid_request(keys.sendgrid, [late]))
    assert r.status_code == 200
    assert (await delivery_of(runtime, user.id))["status"] == "clicked"

    # Replays: the same signed request again, and a re-signed retry whose events carry
    # new sg_event_ids (seen from SendGrid): 409, nothing changes.
    before = await world(runtime, delivery["id"])
    again = await post_sendgrid(webhook_api, body, headers)
    assert again.status_code == 409
    renamed = [{**e, "sg_event_id": uuid.uuid4().hex} for e in (delivered, opened, clicked)]
    retry = await post_sendgrid(webhook_api, *sendgrid_request(keys.sendgrid, renamed))
    assert retry.status_code == 409
    assert await world(runtime, delivery["id"]) == before


async def test_sendgrid_forged_tampered_stale_and_unsigned_change_nothing(
    webhook_api: str, keys: Keys, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    user, delivery = await sent_email(webhook_api, token_for, make_users, runtime, deliverer)
    bounce = [sg_event(delivery, "bounce", user.email, type="bounce", reason="550 no such user")]
    before = await world(runtime, delivery["id"])

    forger = ec.generate_private_key(ec.SECP256R1())
    forged = await post_sendgrid(webhook_api, *sendgrid_request(forger, bounce))
    body, headers = sendgrid_request(keys.sendgrid, bounce)
    tampered = await post_sendgrid(webhook_api, body.replace(b"bounce", b"spamreport", 1), headers)
    reformatted = await post_sendgrid(webhook_api, body.rstrip(), headers)  # not the raw bytes
    stale = await post_sendgrid(
        webhook_api, *sendgrid_request(keys.sendgrid, bounce, at=time.time() - 301)
    )
    unsigned = await post_sendgrid(webhook_api, body, {"Content-Type": "application/json"})
    statuses = [r.status_code for r in (forged, tampered, reformatted, stale, unsigned)]
    assert statuses == [401] * 5
    assert forged.headers["content-type"] == "application/problem+json"
    assert await world(runtime, delivery["id"]) == before
    assert not await is_suppressed(runtime, user.email)


async def test_sendgrid_hard_bounce_suppresses_and_a_block_does_not(
    webhook_api: str, keys: Keys, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    hard_user, hard = await sent_email(webhook_api, token_for, make_users, runtime, deliverer)
    soft_user, soft = await sent_email(webhook_api, token_for, make_users, runtime, deliverer)
    events = [
        sg_event(hard, "bounce", hard_user.email, type="bounce", reason="550 5.1.1 unknown"),
        sg_event(soft, "bounce", soft_user.email, type="blocked", reason="421 try later"),
    ]
    r = await post_sendgrid(webhook_api, *sendgrid_request(keys.sendgrid, events))
    assert r.status_code == 200, r.text
    assert (await delivery_of(runtime, hard_user.id))["status"] == "bounced"
    assert await is_suppressed(runtime, hard_user.email)
    assert not await is_suppressed(runtime, soft_user.email)

    # Every later send respects the suppression, transactional included.
    for user in (hard_user, soft_user):
        async with httpx.AsyncClient(base_url=webhook_api) as client:
            r = await client.post(
                "/api/notifications/send",
                json={"userId": user.id, "type": "account_notice", "title": "Account",
                      "message": "m", "channels": ["email"]},
                headers={"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"},
            )  # fmt: skip
            assert r.status_code == 202, r.text
    await deliverer.drain(runtime.db)
    assert [m["Subject"] for m in smtp_sink.to(hard_user.email)] == ["Results"]
    assert [m["Subject"] for m in smtp_sink.to(soft_user.email)] == ["Results", "Account"]


async def test_a_providers_deferral_does_not_make_us_send_again(
    webhook_api: str, keys: Keys, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    user, delivery = await sent_email(webhook_api, token_for, make_users, runtime, deliverer)
    deferred = [sg_event(delivery, "deferred", user.email, response="451 greylisted")]
    r = await post_sendgrid(webhook_api, *sendgrid_request(keys.sendgrid, deferred))
    assert r.status_code == 200, r.text
    row = await delivery_of(runtime, user.id)
    assert row["status"] == "sent"  # our 'deferred' would put it back in the drain
    assert row["deferred_at"] is not None
    await deliverer.drain(runtime.db)
    assert len(smtp_sink.to(user.email)) == 1


async def test_sns_subscription_confirmation_visits_the_subscribe_url(
    webhook_api: str, keys: Keys
) -> None:
    message = sns_message(keys.sns, "SubscriptionConfirmation", "confirm", version="1")
    r = await post_sns(webhook_api, message)
    assert r.status_code == 200, r.text
    assert SUBSCRIBE_URL in keys.fetched


@pytest.mark.parametrize("version", ["1", "2"])
async def test_ses_bounces_and_complaints_over_sns(
    webhook_api: str, keys: Keys, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink, version: str,
) -> None:  # fmt: skip
    users = []
    for _ in range(4):
        users.append(await sent_email(webhook_api, token_for, make_users, runtime, deliverer))
    (permanent_user, permanent), (transient_user, transient) = users[0], users[1]
    (complaint_user, complaint), (delivered_user, delivered) = users[2], users[3]

    def bounce(delivery: dict[str, Any], address: str, kind: str) -> str:
        return ses_event(delivery, "Bounce", bounce={
            "bounceType": kind, "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": address}]})  # fmt: skip

    messages = [
        sns_message(keys.sns, "Notification", bounce(permanent, permanent_user.email, "Permanent"),
                    version=version, subject="Amazon SES Email Event Notification"),
        sns_message(keys.sns, "Notification", bounce(transient, transient_user.email, "Transient"),
                    version=version),
        sns_message(keys.sns, "Notification", ses_event(complaint, "Complaint", complaint={
            "complainedRecipients": [{"emailAddress": complaint_user.email}]}), version=version),
        sns_message(keys.sns, "Notification", ses_event(delivered, "Delivery"), version=version),
    ]  # fmt: skip
    for message in messages:
        r = await post_sns(webhook_api, message)
        assert r.status_code == 200, r.text
    assert (await delivery_of(runtime, permanent_user.id))["status"] == "bounced"
    assert (await delivery_of(runtime, transient_user.id))["status"] == "bounced"
    assert (await delivery_of(runtime, complaint_user.id))["status"] == "complained"
    assert (await delivery_of(runtime, delivered_user.id))["status"] == "delivered"
    assert await is_suppressed(runtime, permanent_user.email)
    assert await is_suppressed(runtime, complaint_user.email)
    assert not await is_suppressed(runtime, transient_user.email)
    assert not await is_suppressed(runtime, delivered_user.email)

    # The same SNS message again (SNS MessageId already applied): 409, nothing changes.
    before = await world(runtime, delivered["id"])
    assert (await post_sns(webhook_api, messages[3])).status_code == 409
    assert await world(runtime, delivered["id"]) == before


async def test_sns_forged_tampered_stale_and_foreign_change_nothing(
    webhook_api: str, keys: Keys, token_for: Any, make_users: Any, runtime: Runtime,
    deliverer: Deliverer, smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    user, delivery = await sent_email(webhook_api, token_for, make_users, runtime, deliverer)
    complaint = ses_event(delivery, "Complaint", complaint={
        "complainedRecipients": [{"emailAddress": user.email}]})  # fmt: skip
    before = await world(runtime, delivery["id"])
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    genuine = sns_message(keys.sns, "Notification", complaint)
    tampered = {**genuine, "Message": complaint.replace("Complaint", "Delivery")}

    def signed(**overrides: Any) -> dict[str, str]:
        return sns_message(keys.sns, "Notification", complaint, **overrides)

    attempts: dict[str, tuple[dict[str, str] | bytes, int]] = {
        "forged": (sns_message(forger, "Notification", complaint), 401),
        "tampered": (tampered, 401),
        "stale": (signed(at=datetime.now(UTC) - timedelta(hours=2)), 401),
        "foreign topic": (signed(TopicArn="arn:aws:sns:us-east-1:999:x"), 403),
        "certificate elsewhere": (signed(SigningCertURL="https://evil.example/cert.pem"), 403),
        "certificate over http": (signed(SigningCertURL=CERT_URL.replace("https", "http")), 403),
        "unknown version": (signed(SignatureVersion="3"), 400),
        "not json": (b"Type=Notification", 400),
    }
    answers = {name: (await post_sns(webhook_api, body)).status_code
               for name, (body, _) in attempts.items()}  # fmt: skip
    assert answers == {name: status for name, (_, status) in attempts.items()}
    assert await world(runtime, delivery["id"]) == before
    assert not await is_suppressed(runtime, user.email)
