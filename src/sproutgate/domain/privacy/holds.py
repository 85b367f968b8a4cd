"""The hold on a deleted account's identifiers: for ``deleted_account_hold_seconds`` after the
deletion, its addresses and account name cannot be taken by anyone (sign-up on either face, a
secondary address, an administrator's create or update). Other apps key their data on the
account name, and mail keeps arriving at an address: handing either to a newcomer at once would
hand them what the old owner left behind.

The account rules (``domain/accounts``, ``domain/admin``) ask ``email_held``/``account_held``
inside their own transactions, next to their "taken" checks, and answer a held identifier
exactly as a taken one; ``PrivacyService`` places the holds when it deletes an account."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.domain.clock import Clock
from sproutgate.domain.privacy.rules import HeldKind, held_digest
from sproutgate.storage.privacy import HeldIdentifierRepository


class IdentifierHolds:
    """Checks and places holds. ``key``: the secret the digests are made with
    (``data/keys/held-identifiers.key``, 32 bytes, the same on every instance: with another
    key the holds are not found, and the identifiers are free)."""

    def __init__(self, key: bytes, clock: Clock) -> None:
        self._key = key
        self.clock = clock

    def _digests(self, kind: HeldKind, values: Iterable[str]) -> list[str]:
        return [held_digest(self._key, kind, v.lower()) for v in values]

    async def email_held(self, s: AsyncSession, *emails: str) -> bool:
        """Whether one of ``emails`` (normalized addresses) belongs to an account deleted less
        than the hold ago."""
        return await HeldIdentifierRepository(s).any_held(
            self._digests(HeldKind.EMAIL, emails), self.clock.now()
        )

    async def account_held(self, s: AsyncSession, account: str) -> bool:
        """Whether the account name (any case) belongs to an account deleted less than the hold ago."""
        return await HeldIdentifierRepository(s).any_held(
            self._digests(HeldKind.ACCOUNT, [account]), self.clock.now()
        )

    async def hold(
        self, s: AsyncSession, emails: Iterable[str], account: str, deleted_at: datetime, until: datetime
    ) -> None:
        """Hold ``emails`` and ``account`` until ``until`` (nothing when ``until`` is not after
        ``deleted_at``: no hold configured)."""
        if until <= deleted_at:
            return
        repo = HeldIdentifierRepository(s)
        for kind, digests in (
            (HeldKind.EMAIL, self._digests(HeldKind.EMAIL, emails)),
            (HeldKind.ACCOUNT, self._digests(HeldKind.ACCOUNT, [account])),
        ):
            for digest in digests:
                await repo.hold(kind.value, digest, deleted_at, until)
