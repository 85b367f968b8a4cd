"""One-time codes: 6 digits from ``secrets``, stored as keyed HMAC hashes, bound to a purpose and
an email, single use, expiring, and dead after a few wrong tries."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sproutgate.config import Settings
from sproutgate.domain.clock import Clock
from sproutgate.domain.codes.rules import CodePurpose
from sproutgate.storage.models import VerificationCode
from sproutgate.storage.repositories import CodeRepository


class CodeService:
    """Issues and checks mailed one-time codes inside the caller's transaction."""

    def __init__(self, settings: Settings, key: bytes, clock: Clock) -> None:
        self.settings = settings
        self._key = key
        self.clock = clock

    def _hash(self, purpose: str, email: str, code: str) -> str:
        msg = f"{purpose}\x00{email.lower()}\x00{code}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    async def issue(
        self, repo: CodeRepository, purpose: CodePurpose, email: str, user_id: str | None = None
    ) -> tuple[str, datetime]:
        """Create a code (replacing any earlier one for this purpose and email).

        Returns the plain code, to be mailed and never stored, and its expiry."""
        code = f"{secrets.randbelow(1_000_000):06d}"
        now = self.clock.now()
        expires = now + timedelta(seconds=self.settings.code_ttl_seconds)
        await repo.replace(
            VerificationCode(
                purpose=purpose.value,
                email=email.lower(),
                user_id=user_id,
                code_hash=self._hash(purpose.value, email, code),
                attempts=0,
                created_at=now,
                expires_at=expires,
            )
        )
        return code, expires

    async def consume(
        self, repo: CodeRepository, purpose: CodePurpose, email: str, code: str
    ) -> VerificationCode | None:
        """Check and burn a code; None for a wrong, expired, used-up or missing code.

        It returns instead of raising so that the caller's transaction still commits the
        counted wrong guess; the caller raises ``InvalidCode`` after the commit. After
        ``code_max_attempts`` wrong guesses the code is deleted."""
        row = await repo.current(purpose.value, email)
        if row is None:
            return None
        if row.expires_at <= self.clock.now() or row.attempts >= self.settings.code_max_attempts:
            await repo.delete(row)
            return None
        if not hmac.compare_digest(row.code_hash, self._hash(purpose.value, email, code)):
            if row.attempts + 1 >= self.settings.code_max_attempts:
                await repo.delete(row)
            else:
                await repo.count_attempt(row.id)
            return None
        # Two requests may both read the row; only the one whose DELETE removes it may use it.
        return row if await repo.delete(row) else None
