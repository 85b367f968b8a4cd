"""SQL of passkeys: the credentials and the challenges of their ceremonies. Never commits: the
caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.storage.models import Passkey, PasskeyChallenge
from sproutgate.storage.repositories import rowcount
from sproutgate.storage.statements import Statements


class PasskeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    # -- credentials --------------------------------------------------------------------------
    async def of_user(self, user_id: str) -> list[Passkey]:
        """The user's passkeys, oldest first."""
        stmt = select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at, Passkey.id)
        return list((await self.s.execute(stmt)).scalars())

    async def count(self, user_id: str) -> int:
        stmt = select(func.count()).where(Passkey.user_id == user_id)
        return int((await self.s.execute(stmt)).scalar_one())

    async def counts(self, user_ids: Sequence[str]) -> dict[str, int]:
        """How many passkeys each of ``user_ids`` has (users without one are left out)."""
        if not user_ids:
            return {}
        stmt = (
            select(Passkey.user_id, func.count())
            .where(Passkey.user_id.in_(list(user_ids)))
            .group_by(Passkey.user_id)
        )
        return {uid: int(n) for uid, n in (await self.s.execute(stmt)).all()}

    async def by_credential_id(self, credential_id: str) -> Passkey | None:
        stmt = select(Passkey).where(Passkey.credential_id == credential_id)
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def add(self, passkey: Passkey) -> None:
        self.s.add(passkey)
        await self.s.flush()

    async def record_use(
        self, passkey_id: str, stored_count: int, new_count: int, backup_state: bool, now: datetime
    ) -> bool:
        """Store a verified assertion's counter and backup state, only if the counter is still
        ``stored_count``: False when a concurrent assertion moved it first (or the passkey is
        gone), so a counter never goes back."""
        res = await self.s.execute(
            update(Passkey)
            .where(Passkey.id == passkey_id, Passkey.sign_count == stored_count)
            .values(sign_count=new_count, backup_state=backup_state, last_used_at=now)
        )
        return rowcount(res) == 1

    async def delete_one(self, user_id: str, passkey_id: str) -> Passkey | None:
        """Remove the user's passkey ``passkey_id``; the removed row, or None when the user has
        no such passkey."""
        stmt = select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id).with_for_update()
        row = (await self.s.execute(stmt)).scalar_one_or_none()
        if row is None:
            return None
        await self.s.execute(delete(Passkey).where(Passkey.id == passkey_id))
        return row

    async def delete_all(self, user_id: str) -> int:
        """Remove every passkey of the user and their waiting challenges."""
        await self.s.execute(delete(PasskeyChallenge).where(PasskeyChallenge.user_id == user_id))
        return rowcount(await self.s.execute(delete(Passkey).where(Passkey.user_id == user_id)))

    # -- challenges ---------------------------------------------------------------------------
    async def add_challenge(self, challenge: PasskeyChallenge) -> None:
        self.s.add(challenge)
        await self.s.flush()

    async def take_challenge(self, challenge_hash: str) -> PasskeyChallenge | None:
        """Remove and return the challenge ``challenge_hash``: single use, whatever comes of the
        response. None when unknown or already taken (also by a concurrent request: only the
        one whose DELETE removed it gets it)."""
        stmt = select(PasskeyChallenge).where(PasskeyChallenge.challenge_hash == challenge_hash)
        row = (await self.s.execute(stmt)).scalar_one_or_none()
        if row is None:
            return None
        res = await self.s.execute(delete(PasskeyChallenge).where(PasskeyChallenge.id == row.id))
        return row if rowcount(res) == 1 else None

    async def purge(self, now: datetime) -> int:
        """Forget challenges that expired unanswered."""
        res = await self.s.execute(delete(PasskeyChallenge).where(PasskeyChallenge.expires_at < now))
        return rowcount(res)


_HAS_PASSKEY = select(Passkey.id).where(Passkey.user_id == bindparam("uid")).limit(1)


class PasskeyRows:
    """What a password sign-in asks of passkeys, on ``Statements`` (storage.statements): Core
    statements, inline on SQLite inside ``Database.write_now``."""

    def __init__(self, statements: Statements) -> None:
        self.run = statements

    async def has_passkey(self, user_id: str) -> bool:
        return await self.run.first(_HAS_PASSKEY, uid=user_id) is not None
