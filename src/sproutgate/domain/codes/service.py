"""One-time codes: 6 digits from ``secrets``, stored as keyed HMAC hashes, bound to a purpose and
an email (and, for a secondary address, to the user who asked), single use, expiring, dead after
a few wrong tries, and ended with the credential they protect (``end_outstanding_codes``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from sproutgate.config import Settings
from sproutgate.domain.clock import Clock
from sproutgate.domain.codes.rules import CodePurpose, held_by_requester
from sproutgate.storage.mfa import MfaRepository
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
        """Create a code, replacing any earlier one for this purpose and email (and, for a purpose
        ``held_by_requester``, only the same user's: another user's code for the address stays).

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
            ),
            per_user=held_by_requester(purpose),
        )
        return code, expires

    async def consume(
        self,
        repo: CodeRepository,
        purpose: CodePurpose,
        email: str,
        code: str,
        user_id: str | None = None,
    ) -> VerificationCode | None:
        """Check and burn a code; None for a wrong, expired, used-up or missing code.

        For a purpose ``held_by_requester`` only ``user_id``'s own code is looked at (counted,
        burnt), never another user's. It returns instead of raising so that the caller's
        transaction still commits the counted wrong guess; the caller raises ``InvalidCode``
        after the commit. After ``code_max_attempts`` wrong guesses the code is deleted."""
        if held_by_requester(purpose):
            if user_id is None:
                return None
            row = await repo.current(purpose.value, email, user_id=user_id)
        else:
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


async def end_outstanding_codes(
    repo: CodeRepository, user_id: str, *, sent_to: Iterable[str] | None = None
) -> int:
    """End a user's outstanding codes inside the caller's transaction: every code of the user
    (reset and secondary-address codes, whatever address they went to), or with ``sent_to``
    only those mailed to these addresses. Returns how many ended.

    The one place for the rule "a code never outlives the credential it protects"; every path
    calls it in the transaction that makes the change: a password set by any path (profile on
    both faces and the pages, reset, administrator, import), an address leaving the account
    (``sent_to``: a primary address replaced, a secondary one removed), the account disabled or
    deleted. Sign-up codes belong to no user and are not touched.

    Without ``sent_to`` (the password or the account changed, not an address) the user's
    sign-ins waiting for their second step end too: an ``mfa_token`` proves the password as it
    was, so one taken with a password the owner has since reset opens nothing (with it the
    passkey challenges of those second steps, which belong to them). Counted in the answer
    only are the codes."""
    if sent_to is None:
        await MfaRepository(repo.s).delete_challenges_of(user_id)
    return await repo.delete_for_user(user_id, None if sent_to is None else sorted(set(sent_to)))
