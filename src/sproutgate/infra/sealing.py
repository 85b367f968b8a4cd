"""Values sealed at rest. Queued mail: the subject and bodies of ``mail_outbox`` rows carry
one-time codes, so they are stored encrypted with a key from the data dir
(``data/keys/outbox.key``) and a database dump alone never shows a code. Authenticator-app
secrets are sealed the same way under a key of their own (``SecretSealer``, ``data/keys/mfa.key``).

AES-256-GCM, a random 96-bit nonce per field, stored as text: ``enc1:`` + urlsafe base64 of
nonce + ciphertext + tag. The associated data names the field, the message's Message-ID and its
recipient, so a sealed value copied into another field, another row, or a row whose recipient
was changed does not open. Values without the prefix (rows queued before sealing existed) are
returned as they are.

Rotation of the mfa key: ``sproutgate keys rotate-mfa`` adds ``data/keys/mfa-<time>.key``,
re-seals every authenticator secret under it, then moves the older mfa keys to
``data/keys/retired/`` (see ``SecretSealer``, docs/deployment.md).

Rotation of the outbox key: ``sproutgate keys rotate-outbox`` adds
``data/keys/outbox-<time>.key``; the newest key seals, all of them open, and every instance
re-reads the keys within a minute (at once when a value opens with none of its keys). A retired
key can be deleted once no row it sealed remains (sent mail is purged after 7 days; see
docs/deployment.md).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sproutgate.infra.keys import keys_dir, load_or_create_secret, write_new_file
from sproutgate.private_files import private_dir

KEY_FILE = "outbox.key"
ROTATED_PATTERN = "outbox-*.key"  # keys added by `sproutgate keys rotate-outbox`, newer than KEY_FILE

log = logging.getLogger(__name__)
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
    """Seals and opens the text fields of one outbox message with the outbox keys: the newest
    seals, every one opens (``sproutgate keys rotate-outbox`` adds a key; see ``load_outbox_keys``).

    ``reload`` (optional) returns the current keys, oldest first; it is called every
    ``refresh_seconds`` and, at most once a second, when a sealed value opens with none of the
    keys held (another instance may already seal with a key this one has not read yet)."""

    def __init__(
        self,
        keys: bytes | list[bytes],
        *,
        reload: Callable[[], list[bytes]] | None = None,
        refresh_seconds: float = 60.0,
    ) -> None:
        self._reload = reload
        self._refresh_seconds = refresh_seconds
        self._loaded_at = time.monotonic()
        self._missed_at = float("-inf")
        self._use([keys] if isinstance(keys, bytes) else keys)

    def _use(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one outbox key is required")
        for key in keys:
            if len(key) != 32:
                raise ValueError(f"an outbox key must be 32 bytes, not {len(key)}")
        self._keys = list(keys)
        self._aead = AESGCM(keys[-1])
        # Newest first: rows queued lately are the ones read most.
        self._openers = [AESGCM(key) for key in reversed(keys)]

    def _refresh(self, missed: bool = False) -> bool:
        """Re-read the keys when due (or after a miss, at most once a second); True if they changed."""
        if self._reload is None:
            return False
        now = time.monotonic()
        if missed and now - self._missed_at >= 1.0:
            self._missed_at = now
        elif now - self._loaded_at < self._refresh_seconds:
            return False
        self._loaded_at = now
        try:
            keys = self._reload()
        except Exception as exc:  # noqa: BLE001 - keep the keys we have
            log.warning("could not re-read the outbox keys: %s", exc)
            return False
        if keys and keys != self._keys:
            log.info("outbox keys changed: %d key(s), the newest seals", len(keys))
            self._use(keys)
            return True
        return False

    @staticmethod
    def _aad(field: str, message_id: str, to_addr: str) -> bytes:
        return "\x1f".join(("sproutgate:mail_outbox:v1", field, message_id, to_addr)).encode()

    def seal(self, value: str, *, field: str, message_id: str, to_addr: str) -> str:
        self._refresh()
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode(), self._aad(field, message_id, to_addr))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, value: str, *, field: str, message_id: str, to_addr: str) -> str:
        """The clear text of ``value``; unsealed (legacy) values come back unchanged.
        Raises UnsealError when the value is sealed but opens with none of the keys."""
        if not is_sealed(value):
            return value
        try:
            raw = base64.urlsafe_b64decode(value[len(PREFIX) :].encode())
        except (ValueError, binascii.Error) as exc:
            raise UnsealError(field) from exc
        if len(raw) < _NONCE_BYTES + 16:
            raise UnsealError(field)
        aad = self._aad(field, message_id, to_addr)
        for attempt in range(2):
            for aead in self._openers:
                try:
                    clear = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad)
                except InvalidTag:
                    continue
                try:
                    return clear.decode()
                except UnicodeDecodeError as exc:
                    raise UnsealError(field) from exc
            if attempt == 0 and not self._refresh(missed=True):
                break
        raise UnsealError(field)


def load_outbox_keys(data_dir: Path, create: bool = True) -> list[bytes]:
    """The outbox keys in ``data/keys``, oldest first: ``outbox.key`` (created on first start
    unless ``create`` is false), then ``outbox-<time>.key`` files by name (their time sorts)."""
    directory = keys_dir(data_dir)
    keys = []
    if create or (directory / KEY_FILE).exists():
        keys.append(load_or_create_secret(data_dir, KEY_FILE))
    for path in sorted(directory.glob(ROTATED_PATTERN)):
        keys.append(bytes.fromhex(path.read_text().strip()))
    return keys


def add_outbox_key(data_dir: Path) -> str:
    """A new outbox key file; every instance sharing the data dir seals with it within a minute
    and opens with it at once. Returns the file's name."""
    name = f"outbox-{time.time_ns():019d}.key"
    write_new_file(keys_dir(data_dir) / name, secrets.token_bytes(32).hex().encode())
    return name


MFA_KEY_FILE = "mfa.key"
MFA_ROTATED_PATTERN = "mfa-*.key"  # keys added by `sproutgate keys rotate-mfa`; the newest seals
RETIRED_DIR = "retired"  # data/keys/retired: mfa keys no secret is sealed with any more


class SecretSealer:
    """Seals short secrets (authenticator-app secrets) at rest with AES-256-GCM, in the outbox's
    format (``enc1:`` + URL-safe base64 of nonce, ciphertext and tag), under a key family of its
    own in ``data/keys``: the newest key seals, every key opens.

    ``aad`` (associated data) names where a value belongs, e.g. the table and the user id, so a
    sealed value copied to another row does not open.

    ``reload`` (optional) returns the current keys, oldest first. Sealing is rare (an enrolment),
    so the keys are re-read before every seal: once ``sproutgate keys rotate-mfa`` has added a
    key, no instance seals with an older one. A value that opens with none of the keys held
    re-reads them too (at most once a second), so an instance started before a rotation opens
    what was re-sealed under the new key, and stops needing a key the rotation retired."""

    def __init__(self, keys: list[bytes], *, reload: Callable[[], list[bytes]] | None = None) -> None:
        self._reload = reload
        self._missed_at = float("-inf")
        self._use(keys)

    def _use(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        for key in keys:
            if len(key) != 32:
                raise ValueError(f"a sealing key must be 32 bytes, not {len(key)}")
        self._keys = list(keys)
        self._newest = AESGCM(keys[-1])
        self._openers = [AESGCM(key) for key in reversed(keys)]

    def refresh(self) -> bool:
        """Re-read the keys (when a ``reload`` was given); True when they changed."""
        if self._reload is None:
            return False
        try:
            keys = self._reload()
        except Exception as exc:  # noqa: BLE001 - keep the keys we have
            log.warning("could not re-read the mfa keys: %s", exc)
            return False
        if keys and keys != self._keys:
            log.info("mfa keys changed: %d key(s), the newest seals", len(keys))
            self._use(keys)
            return True
        return False

    def seal(self, value: str, aad: bytes, *, reread: bool = True) -> str:
        """``value`` sealed with the newest key; ``reread``: re-read the keys first (a caller
        sealing many values at once re-reads once, with ``refresh``)."""
        if reread:
            self.refresh()
        nonce = os.urandom(_NONCE_BYTES)
        return (
            PREFIX
            + base64.urlsafe_b64encode(nonce + self._newest.encrypt(nonce, value.encode(), aad)).decode()
        )

    @staticmethod
    def _raw(value: str, field: str) -> bytes:
        if not is_sealed(value):
            raise UnsealError(field)
        try:
            raw = base64.urlsafe_b64decode(value[len(PREFIX) :].encode())
        except (ValueError, binascii.Error) as exc:
            raise UnsealError(field) from exc
        if len(raw) < _NONCE_BYTES + 16:
            raise UnsealError(field)
        return raw

    @staticmethod
    def _try(aead: AESGCM, raw: bytes, aad: bytes) -> str | None:
        try:
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad).decode()
        except (InvalidTag, UnicodeDecodeError):
            return None

    def open(self, value: str, aad: bytes, field: str = "secret") -> str:
        """The clear text of a sealed ``value``. Raises UnsealError when it is not sealed, is
        damaged, or opens with none of the keys (after re-reading them once)."""
        raw = self._raw(value, field)
        for attempt in range(2):
            for aead in self._openers:
                clear = self._try(aead, raw, aad)
                if clear is not None:
                    return clear
            now = time.monotonic()
            if attempt == 0 and now - self._missed_at >= 1.0:
                self._missed_at = now
                if self.refresh():
                    continue
            break
        raise UnsealError(field)

    def sealed_with_newest(self, value: str, aad: bytes) -> bool:
        """Whether ``value`` opens with the newest key (the one that seals): False for a value
        an older key sealed, or no key opens."""
        try:
            raw = self._raw(value, "secret")
        except UnsealError:
            return False
        return self._try(self._newest, raw, aad) is not None


def load_mfa_keys(data_dir: Path) -> list[bytes]:
    """The keys sealing second-factor secrets, oldest first: ``mfa.key`` (created on first start,
    mode 0600, first writer wins; not again once a rotation retired it), then every
    ``mfa-<time>.key`` by name (their time sorts)."""
    directory = keys_dir(data_dir)
    rotated = sorted(directory.glob(MFA_ROTATED_PATTERN))
    keys = []
    if not rotated or (directory / MFA_KEY_FILE).exists():
        keys.append(load_or_create_secret(data_dir, MFA_KEY_FILE))
    for path in rotated:
        keys.append(bytes.fromhex(path.read_text().strip()))
    return keys


def add_mfa_key(data_dir: Path) -> str:
    """A new key for second-factor secrets (``mfa-<time>.key``, 0600); from now on every instance
    seals with it. Returns the file's name."""
    load_mfa_keys(data_dir)  # the first key exists before a newer one (a fresh data dir)
    name = f"mfa-{time.time_ns():019d}.key"
    write_new_file(keys_dir(data_dir) / name, secrets.token_bytes(32).hex().encode())
    return name


def retire_mfa_keys(data_dir: Path, keep: str) -> list[str]:
    """Move every mfa key file but ``keep`` into ``data/keys/retired/`` (0700): no instance
    loads them any more, but a database backup taken before the rotation can still be opened by
    moving its key back. Returns the names moved, oldest first."""
    directory = keys_dir(data_dir)
    retired = private_dir(directory / RETIRED_DIR)
    os.chmod(retired, 0o700)
    moved = []
    candidates = [directory / MFA_KEY_FILE, *sorted(directory.glob(MFA_ROTATED_PATTERN))]
    for path in candidates:
        if path.name == keep or not path.exists():
            continue
        target = retired / path.name
        if target.exists():  # the same name retired before: keep both
            target = retired / f"{path.stem}-{time.time_ns():019d}.key"
        os.replace(path, target)
        moved.append(path.name)
    return moved
