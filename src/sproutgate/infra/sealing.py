"""Queued mail sealed at rest: the subject and bodies of ``mail_outbox`` rows carry one-time codes,
so they are stored encrypted with a key from the data dir (``data/keys/outbox.key``) and a
database dump alone never shows a code.

AES-256-GCM, a random 96-bit nonce per field, stored as text: ``enc1:`` + urlsafe base64 of
nonce + ciphertext + tag. The associated data names the field, the message's Message-ID and its
recipient, so a sealed value copied into another field, another row, or a row whose recipient
was changed does not open. Values without the prefix (rows queued before sealing existed) are
returned as they are.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "outbox.key"
PREFIX = "enc1:"
_NONCE_BYTES = 12


class UnsealError(Exception):
    """A sealed value this key cannot open: written with another key, or altered."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} does not open with this outbox key")
        self.field = field


def is_sealed(value: str | None) -> bool:
    return value is not None and value.startswith(PREFIX)


class Sealer:
    """Seals and opens the text fields of one outbox message with the outbox key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError(f"the outbox key must be 32 bytes, not {len(key)}")
        self._aead = AESGCM(key)

    @staticmethod
    def _aad(field: str, message_id: str, to_addr: str) -> bytes:
        return "\x1f".join(("sproutgate:mail_outbox:v1", field, message_id, to_addr)).encode()

    def seal(self, value: str, *, field: str, message_id: str, to_addr: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode(), self._aad(field, message_id, to_addr))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, value: str, *, field: str, message_id: str, to_addr: str) -> str:
        """The clear text of ``value``; unsealed (legacy) values come back unchanged.
        Raises UnsealError when the value is sealed but does not open with this key."""
        if not is_sealed(value):
            return value
        try:
            raw = base64.urlsafe_b64decode(value[len(PREFIX) :].encode())
            if len(raw) < _NONCE_BYTES + 16:
                raise ValueError("too short")
            clear = self._aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], self._aad(field, message_id, to_addr)
            )
            return clear.decode()
        except (InvalidTag, ValueError, binascii.Error) as exc:
            # UnicodeDecodeError is a ValueError; InvalidTag has no message of its own.
            raise UnsealError(field) from exc
