"""Anonymous and session ids issued by the server, signed, so holding one proves possession.

An id a client makes up (`anon_1`, a posthog-js uuid) can be guessed or copied, so it never
links a visitor's history to a user. An id from `POST /api/analytics/anonymous-id` is 128
random bits plus an HMAC-SHA256 signature (itsdangerous): only the visitor it was issued to
knows it, and the server can tell it issued it without storing it. The key is derived from
the field-encryption key (rotating that key retires the ids issued before, not their links).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

from itsdangerous import BadSignature, Signer

IdKind = Literal["anonymous", "session"]

# Readable prefixes; the salt (one per kind) is what keeps a session id from passing as an
# anonymous id and the reverse.
_PREFIX: dict[IdKind, str] = {"anonymous": "anon_", "session": "sess_"}


class SignedIds:
    def __init__(self, secret: bytes) -> None:
        self._signers: dict[IdKind, Signer] = {
            kind: Signer(
                secret,
                salt=f"mysetlist.tracking.{kind}-id",
                key_derivation="hmac",
                digest_method=hashlib.sha256,
            )
            for kind in _PREFIX
        }

    def issue(self, kind: IdKind) -> str:
        token = _PREFIX[kind] + secrets.token_urlsafe(16)
        return self._signers[kind].sign(token).decode()

    def is_signed(self, kind: IdKind, value: str | None) -> bool:
        """Whether `value` is an id of this kind that this server issued."""
        if not value or not value.startswith(_PREFIX[kind]):
            return False
        try:
            self._signers[kind].unsign(value)
        except BadSignature:
            return False
        return True
