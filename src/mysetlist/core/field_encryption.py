"""PII at rest: AES-256-GCM for the value, HMAC-SHA256 (keyed) for equality lookups.

A keyring: the newest key (MYSETLIST_ENCRYPTION_KEY) encrypts, every key decrypts (the
previous ones: MYSETLIST_ENCRYPTION_PREVIOUS_KEYS). A ciphertext names its key by a 4-byte
key id (version 2), so a value is decrypted with the key that wrote it; version-1 values
(written before key ids) are tried against each key. `mysetlist privacy rotate-keys`
re-encrypts every value under the newest key, after which old keys can be dropped.

The keys are expanded with HKDF so that the lookup hash reveals nothing about the
ciphertext key. The lookup hash is not rotated with the encryption key: a hash cannot be
recomputed without its plaintext (the suppression list keeps only hashes), so it stays
derived from the oldest key of the ring (the one the data was first written with).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_V1 = b"\x01"  # version, nonce, ciphertext: one key only
_V2 = b"\x02"  # version, key id, nonce, ciphertext
KEY_ID_BYTES = 4


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def key_id(key: bytes) -> bytes:
    """The id a key's ciphertexts carry (derived, so it reveals nothing of the key)."""
    return _derive(key, b"mysetlist key id v1")[:KEY_ID_BYTES]


class FieldCipher:
    def __init__(self, key: bytes, *, previous_keys: Sequence[bytes] = ()) -> None:
        for k in (key, *previous_keys):
            if len(k) != 32:
                raise ValueError("field-encryption key must be 32 bytes")
        self.key_id = key_id(key)
        self._aead = AESGCM(_derive(key, b"mysetlist field encryption v1"))
        self._ring = {key_id(k): AESGCM(_derive(k, b"mysetlist field encryption v1"))
                      for k in (*reversed(previous_keys), key)}  # fmt: skip
        oldest = previous_keys[-1] if previous_keys else key
        self._mac_key = _derive(oldest, b"mysetlist lookup hash v1")

    def encrypt(self, plaintext: str, *, context: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return _V2 + self.key_id + nonce + self._aead.encrypt(nonce, plaintext.encode(), context)

    def decrypt(self, blob: bytes, *, context: bytes = b"") -> str:
        if blob[:1] == _V2:
            aead = self._ring.get(blob[1 : 1 + KEY_ID_BYTES])
            if aead is None:
                raise ValueError("the value's key is not in the keyring")
            body = blob[1 + KEY_ID_BYTES :]
            return aead.decrypt(body[:12], body[12:], context).decode()
        if blob[:1] == _V1:
            for aead in reversed(self._ring.values()):  # newest first
                try:
                    return aead.decrypt(blob[1:13], blob[13:], context).decode()
                except Exception:
                    continue
            raise ValueError("no key of the keyring decrypts the value")
        raise ValueError("unknown ciphertext version")

    def is_current(self, blob: bytes) -> bool:
        """Whether `blob` is already encrypted under the newest key."""
        return blob[:1] == _V2 and blob[1 : 1 + KEY_ID_BYTES] == self.key_id

    def lookup_hash(self, value: str) -> bytes:
        return hmac.new(self._mac_key, value.strip().lower().encode(), hashlib.sha256).digest()
