"""PII at rest: AES-256-GCM for the value, HMAC-SHA256 (keyed) for equality lookups.

Both keys are derived from the one configured key with HKDF so that the lookup hash
reveals nothing about the ciphertext key.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


class FieldCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("field-encryption key must be 32 bytes")
        self._aead = AESGCM(_derive(key, b"mysetlist field encryption v1"))
        self._mac_key = _derive(key, b"mysetlist lookup hash v1")

    def encrypt(self, plaintext: str, *, context: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), context)

    def decrypt(self, blob: bytes, *, context: bytes = b"") -> str:
        if blob[:1] != _VERSION:
            raise ValueError("unknown ciphertext version")
        return self._aead.decrypt(blob[1:13], blob[13:], context).decode()

    def lookup_hash(self, value: str) -> bytes:
        return hmac.new(self._mac_key, value.strip().lower().encode(), hashlib.sha256).digest()
