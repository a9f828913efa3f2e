"""The tokens in our emails' links stay what plain itsdangerous makes (HMAC key derivation,
a zlib attempt on every payload), byte for byte: links in mail already sent keep working,
and a token made either way reads back the same."""

from __future__ import annotations

import hashlib
import random
import secrets
import uuid

from itsdangerous import URLSafeSerializer

from mysetlist.notify.signed_links import SignedLinks


def _plain(secret: bytes, kind: str) -> URLSafeSerializer:
    return URLSafeSerializer(
        secret,
        salt=f"mysetlist.notify.{kind}",
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
    )


def test_tokens_are_those_of_plain_itsdangerous_at_every_payload_length() -> None:
    secret = secrets.token_bytes(32)
    links = SignedLinks(secret)
    opened, clicked, unsub = (_plain(secret, k) for k in ("open", "click", "unsubscribe"))
    rng = random.Random(16)
    # Every length of id from 1 to 19 digits: the payloads on both sides of the length
    # below which the zlib attempt is skipped.
    ids = [0, *(10**k - 1 for k in range(1, 19)), *(10**k for k in range(19)), 2**63 - 1]
    ids += [rng.randrange(2**63) for _ in range(500)]
    for delivery_id in ids:
        position = rng.randrange(60)
        assert links.open_token(delivery_id) == opened.dumps(delivery_id)
        assert links.click_token(delivery_id, position) == clicked.dumps([delivery_id, position])
        assert links.read_open(opened.dumps(delivery_id)) == delivery_id
        assert links.read_click(clicked.dumps([delivery_id, position])) == (delivery_id, position)
    for category in ("shows", "marketing", "a" * 200):  # the last one is stored compressed
        user_id = str(uuid.uuid4())
        made = unsub.dumps([uuid.UUID(user_id).hex, category])
        assert links.unsubscribe_token(user_id, category) == made
        target = links.read_unsubscribe(made)
        assert target is not None
        assert (target.user_id, target.category) == (user_id, category)
    assert unsub.dumps([uuid.uuid4().hex, "a" * 200]).startswith(".")


def test_a_token_of_another_kind_or_key_does_not_read() -> None:
    links = SignedLinks(secrets.token_bytes(32))
    assert links.read_open(links.click_token(7, 0)) is None
    assert links.read_click(links.open_token(7)) is None
    assert SignedLinks(secrets.token_bytes(32)).read_open(links.open_token(7)) is None
