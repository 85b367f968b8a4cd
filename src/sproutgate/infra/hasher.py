"""Password hashing: argon2id, off the event loop, with verification of imported legacy hashes."""

from __future__ import annotations

import asyncio
import hmac
import re
from typing import Protocol

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordHasher(Protocol):
    """Hashes and checks passwords. Implementations never block the event loop."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, stored_hash: str, password: str) -> bool:
        """True when ``password`` matches; False for a mismatch or an unreadable hash."""
        ...

    def needs_rehash(self, stored_hash: str) -> bool: ...

    async def burn(self, password: str) -> None:
        """Spend the time of one verification, for unknown users (no timing oracle)."""
        ...


class Argon2Hasher:
    """argon2id with configurable cost. Also verifies bcrypt and werkzeug (pbkdf2/scrypt) hashes
    brought in by ``sproutgate import-sproutgate``; those report ``needs_rehash`` so that the
    next successful login upgrades them to argon2id."""

    def __init__(self, time_cost: int = 2, memory_kib: int = 19456, parallelism: int = 1) -> None:
        self._ph = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._dummy = self._ph.hash("sproutgate-dummy-password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._ph.hash, password)

    async def verify(self, stored_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify_sync, stored_hash, password)

    def _verify_sync(self, stored_hash: str, password: str) -> bool:
        if stored_hash.startswith("$argon2"):
            try:
                return self._ph.verify(stored_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
        if stored_hash.startswith(("$2a$", "$2b$", "$2y$")):
            import bcrypt

            try:
                return bcrypt.checkpw(password.encode()[:72], stored_hash.encode())
            except ValueError:
                return False
        if stored_hash.startswith(("pbkdf2:", "scrypt:")):
            from werkzeug.security import check_password_hash

            try:
                return check_password_hash(stored_hash, password)
            except (ValueError, TypeError):
                return False
        # Unknown format: still spend the time, never match.
        self._burn_sync(password)
        return False

    def _burn_sync(self, password: str) -> None:
        try:
            self._ph.verify(self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            pass

    async def burn(self, password: str) -> None:
        await asyncio.to_thread(self._burn_sync, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        if not stored_hash.startswith("$argon2id"):
            return True
        try:
            return self._ph.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True


# The stored formats Argon2Hasher verifies, as they look on disk (used to vet imported records).
_SCHEMES = (
    ("argon2", re.compile(r"^\$argon2(id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$")),
    ("bcrypt", re.compile(r"^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$")),
    ("pbkdf2", re.compile(r"^pbkdf2:sha(1|224|256|384|512)(:\d+)?\$[^$]+\$[0-9a-f]+$")),
    ("scrypt", re.compile(r"^scrypt(:\d+:\d+:\d+)?\$[^$]+\$[0-9a-f]+$")),
)


def hash_scheme(stored_hash: str) -> str | None:
    """ "argon2", "bcrypt", "pbkdf2" or "scrypt" for a well-formed hash this module verifies,
    None for anything else (including plain text)."""
    for name, pattern in _SCHEMES:
        if pattern.match(stored_hash):
            return name
    return None


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
