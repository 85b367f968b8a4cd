"""SQL of the OAuth client registry (table ``oauth_clients``). Never commits: the caller owns
the transaction."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.storage.models import OAuthClient
from sproutgate.storage.repositories import rowcount


class ClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    def add(self, row: OAuthClient) -> None:
        self.s.add(row)

    async def get(self, client_id: str, *, lock: bool = False, share: bool = False) -> OAuthClient | None:
        """The client's row; ``lock``: held until commit (PostgreSQL); ``share``: held against
        changes until commit (FOR SHARE, PostgreSQL), other readers not blocked."""
        stmt = select(OAuthClient).where(OAuthClient.client_id == client_id)
        if lock:
            stmt = stmt.with_for_update()
        elif share:
            stmt = stmt.with_for_update(read=True)
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def all(self) -> list[OAuthClient]:
        """Every client, oldest first."""
        stmt = select(OAuthClient).order_by(OAuthClient.created_at, OAuthClient.client_id)
        return list((await self.s.execute(stmt)).scalars())

    async def delete(self, client_id: str) -> bool:
        """False when there was no such client (or a concurrent request deleted it first)."""
        res = await self.s.execute(delete(OAuthClient).where(OAuthClient.client_id == client_id))
        return rowcount(res) == 1
