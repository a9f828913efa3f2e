"""Opaque, signed tokens in the links of our messages (itsdangerous, HMAC-SHA256).

- unsubscribe: per user and category (RFC 8058 one-click, and the preferences page);
- open and click tracking: per delivery (and link position); the click's destination is
  stored on our side (`notify.tracked_links`) and never read from the URL, so a token
  cannot be turned into an open redirect.

The key is derived from the field-encryption key; each kind has its own salt, so an open
token never passes as an unsubscribe token.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer


@dataclass(frozen=True)
class UnsubscribeTarget:
    user_id: str
    category: str


class SignedLinks:
    def __init__(self, secret: bytes) -> None:
        def serializer(kind: str) -> URLSafeSerializer:
            return URLSafeSerializer(
                secret,
                salt=f"mysetlist.notify.{kind}",
                signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
            )

        self._unsubscribe = serializer("unsubscribe")
        self._open = serializer("open")
        self._click = serializer("click")

    def unsubscribe_token(self, user_id: str, category: str) -> str:
        return str(self._unsubscribe.dumps([uuid.UUID(user_id).hex, category]))

    def read_unsubscribe(self, token: str) -> UnsubscribeTarget | None:
        try:
            user_hex, category = self._unsubscribe.loads(token)
            return UnsubscribeTarget(str(uuid.UUID(hex=user_hex)), str(category))
        except (BadSignature, ValueError, TypeError):
            return None

    def open_token(self, delivery_id: int) -> str:
        return str(self._open.dumps(delivery_id))

    def read_open(self, token: str) -> int | None:
        try:
            value = self._open.loads(token)
        except BadSignature:
            return None
        return value if isinstance(value, int) else None

    def click_token(self, delivery_id: int, position: int) -> str:
        return str(self._click.dumps([delivery_id, position]))

    def read_click(self, token: str) -> tuple[int, int] | None:
        try:
            delivery_id, position = self._click.loads(token)
        except (BadSignature, ValueError, TypeError):
            return None
        if isinstance(delivery_id, int) and isinstance(position, int):
            return delivery_id, position
        return None
