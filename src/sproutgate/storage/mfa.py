"""SQL of second factors: authenticator apps, recovery codes and sign-in challenges. Never
commits: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.storage.models import MfaChallenge, RecoveryCode, TotpFactor
from sproutgate.storage.repositories import rowcount
from sproutgate.storage.statements import Statements

_challenges = cast(Table, MfaChallenge.__table__)
# The sign-in's question, as Core statements (inline on SQLite, Database.write_now).
_ACTIVE_TOTP = select(TotpFactor.user_id).where(
    TotpFactor.user_id == bindparam("uid"), TotpFactor.activated_at.is_not(None)
)
_ADD_CHALLENGE = insert(_challenges).values(
    id=bindparam("new_id"),
    token_hash=bindparam("hash"),
    user_id=bindparam("uid"),
    session_kind=bindparam("kind"),
    attempts=0,
    created_at=bindparam("now"),
    expires_at=bindparam("until"),
)


class MfaRows:
    """What a password sign-in asks of second factors, on ``Statements`` (storage.statements)."""

    def __init__(self, statements: Statements) -> None:
        self.run = statements

    async def has_active_totp(self, user_id: str) -> bool:
        return await self.run.first(_ACTIVE_TOTP, uid=user_id) is not None

    async def add_challenge(
        self, challenge_id: str, token_hash: str, user_id: str, kind: str, now: datetime, until: datetime
    ) -> None:
        await self.run.run(
            _ADD_CHALLENGE, new_id=challenge_id, hash=token_hash, uid=user_id, kind=kind, now=now, until=until
        )


class MfaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    # -- authenticator apps -------------------------------------------------------------------
    async def totp(self, user_id: str, *, lock: bool = False) -> TotpFactor | None:
        """The user's authenticator (pending or active); ``lock``: held until commit (PostgreSQL)."""
        stmt = select(TotpFactor).where(TotpFactor.user_id == user_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def all_totp(self, *, lock: bool = False) -> list[TotpFactor]:
        """Every authenticator row, pending or active, by user id (a key rotation re-seals them);
        ``lock``: held until commit (PostgreSQL)."""
        stmt = select(TotpFactor).order_by(TotpFactor.user_id)
        if lock:
            stmt = stmt.with_for_update()
        return list((await self.s.execute(stmt)).scalars())

    async def replace_totp(self, factor: TotpFactor) -> None:
        """Store ``factor``, removing whatever authenticator row the user had."""
        await self.delete_totp(factor.user_id)
        await self.s.flush()
        self.s.add(factor)

    async def accept_step(self, user_id: str, step: int, now: datetime) -> bool:
        """Record ``step`` as the last accepted one unless it is not later than the last one;
        False when it is not (a replay, or a concurrent request used it first)."""
        res = await self.s.execute(
            update(TotpFactor)
            .where(
                TotpFactor.user_id == user_id,
                or_(TotpFactor.last_used_step.is_(None), TotpFactor.last_used_step < step),
            )
            .values(last_used_step=step, last_used_at=now)
        )
        return rowcount(res) == 1

    async def delete_totp(self, user_id: str) -> int:
        return rowcount(await self.s.execute(delete(TotpFactor).where(TotpFactor.user_id == user_id)))

    async def active_totp_users(self, user_ids: Sequence[str]) -> set[str]:
        if not user_ids:
            return set()
        stmt = select(TotpFactor.user_id).where(
            TotpFactor.user_id.in_(user_ids), TotpFactor.activated_at.is_not(None)
        )
        return set((await self.s.execute(stmt)).scalars())

    # -- recovery codes -----------------------------------------------------------------------
    async def unused_recovery_codes(self, user_id: str) -> list[RecoveryCode]:
        stmt = select(RecoveryCode).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        return list((await self.s.execute(stmt)).scalars())

    async def recovery_codes_left(self, user_id: str) -> int:
        stmt = select(func.count()).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        return int((await self.s.execute(stmt)).scalar_one())

    async def replace_recovery_codes(self, user_id: str, code_hashes: Sequence[str], now: datetime) -> None:
        """The user's set becomes ``code_hashes``; every earlier code, used or not, is gone."""
        await self.delete_recovery_codes(user_id)
        for code_hash in code_hashes:
            self.s.add(RecoveryCode(user_id=user_id, code_hash=code_hash, created_at=now))
        await self.s.flush()

    async def use_recovery_code(self, code_id: str, now: datetime) -> bool:
        """Mark a code used; False when a concurrent request used it first."""
        res = await self.s.execute(
            update(RecoveryCode)
            .where(RecoveryCode.id == code_id, RecoveryCode.used_at.is_(None))
            .values(used_at=now)
        )
        return rowcount(res) == 1

    async def delete_recovery_codes(self, user_id: str) -> int:
        return rowcount(await self.s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id)))

    # -- sign-in challenges -------------------------------------------------------------------
    async def challenge(self, token_hash: str) -> MfaChallenge | None:
        stmt = select(MfaChallenge).where(MfaChallenge.token_hash == token_hash)
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def count_challenge_attempt(self, challenge_id: str) -> None:
        await self.s.execute(
            update(MfaChallenge)
            .where(MfaChallenge.id == challenge_id)
            .values(attempts=MfaChallenge.attempts + 1)
        )

    async def delete_challenge(self, challenge_id: str) -> bool:
        """False when a concurrent request deleted (used) it first."""
        res = await self.s.execute(delete(MfaChallenge).where(MfaChallenge.id == challenge_id))
        return rowcount(res) == 1

    async def delete_challenges_of(self, user_id: str) -> int:
        return rowcount(await self.s.execute(delete(MfaChallenge).where(MfaChallenge.user_id == user_id)))

    async def purge(self, now: datetime, pending_before: datetime) -> int:
        """Forget expired challenges and enrolments never confirmed since ``pending_before``."""
        challenges = await self.s.execute(delete(MfaChallenge).where(MfaChallenge.expires_at < now))
        pending = await self.s.execute(
            delete(TotpFactor).where(
                TotpFactor.activated_at.is_(None), TotpFactor.created_at < pending_before
            )
        )
        return rowcount(challenges) + rowcount(pending)
