"""Queries of the back-channel logout outbox. Statuses are the domain's values
(``domain.backchannel.rules``), passed in: this layer stores and filters them, it does not
decide them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.storage.models import BackchannelDelivery, OAuthClient, OidcSessionClient
from sproutgate.storage.repositories import rowcount
from sproutgate.storage.statements import Statements

_outbox = cast(Table, BackchannelDelivery.__table__)
_used_with = cast(Table, OidcSessionClient.__table__)
_clients = cast(Table, OAuthClient.__table__)
# The clients a browser sign-in was used with that registered a back-channel logout URI.
_CLIENTS_TO_TELL = (
    select(_used_with.c.client_id, _clients.c.backchannel_logout_uri.label("uri"))
    .join(_clients, _clients.c.client_id == _used_with.c.client_id)
    .where(_used_with.c.session_id == bindparam("sid"), _clients.c.backchannel_logout_uri.is_not(None))
    .order_by(_used_with.c.first_at, _clients.c.client_id)
)
_ADD_DELIVERY = insert(_outbox).values(
    id=bindparam("new_id"),
    jti=bindparam("new_jti"),
    client_id=bindparam("cid"),
    uri=bindparam("to_uri"),
    user_id=bindparam("uid"),
    session_id=bindparam("sid"),
    reason=bindparam("why"),
    status=bindparam("new_status"),
    attempts=0,
    created_at=bindparam("now"),
    next_attempt_at=bindparam("now"),
)


class BackchannelRows:
    """The writes of the transaction that ends a session, as Core statements on
    ``Statements`` (storage.statements): inline on SQLite when that transaction is (a reused
    refresh token), the same code elsewhere."""

    def __init__(self, run: Statements) -> None:
        self.run = run

    async def clients_to_tell(self, session_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        """For the browser sign-ins ``session_ids``: each (session id, client id, back-channel
        logout URI) of a client the sign-in was used with that registered such a URI. One
        indexed query per session (a user has a handful)."""
        found: list[tuple[str, str, str]] = []
        for sid in session_ids:
            rows = await self.run.all(_CLIENTS_TO_TELL, sid=sid)
            found.extend((sid, row["client_id"], row["uri"]) for row in rows if row["uri"])
        return found

    async def add(self, delivery: BackchannelDelivery) -> None:
        """Queue ``delivery`` (every column but the worker's set, ``id`` included)."""
        await self.run.run(
            _ADD_DELIVERY,
            new_id=delivery.id,
            new_jti=delivery.jti,
            cid=delivery.client_id,
            to_uri=delivery.uri,
            uid=delivery.user_id,
            sid=delivery.session_id,
            why=delivery.reason,
            new_status=delivery.status,
            now=delivery.created_at,
        )


class BackchannelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def forget_client(self, client_id: str, statuses: Sequence[str]) -> int:
        """Drop the deliveries to ``client_id`` in one of ``statuses``; how many."""
        res = await self.s.execute(
            delete(BackchannelDelivery).where(
                BackchannelDelivery.client_id == client_id, BackchannelDelivery.status.in_(tuple(statuses))
            )
        )
        return rowcount(res)

    @staticmethod
    def _due(now: datetime, waiting: str, leased: str) -> ColumnElement[bool]:
        return or_(
            and_(BackchannelDelivery.status == waiting, BackchannelDelivery.next_attempt_at <= now),
            and_(BackchannelDelivery.status == leased, BackchannelDelivery.locked_until < now),
        )

    async def due_ids(self, now: datetime, limit: int, *, waiting: str, leased: str) -> list[str]:
        """Ids of due deliveries, the longest waiting first: in status ``waiting`` with their
        next attempt at or before ``now``, or in status ``leased`` with their lease over."""
        stmt = (
            select(BackchannelDelivery.id)
            .where(self._due(now, waiting, leased))
            .order_by(BackchannelDelivery.next_attempt_at)
            .limit(limit)
        )
        return list((await self.s.execute(stmt)).scalars())

    async def claim(
        self, delivery_id: str, now: datetime, lease_until: datetime, *, waiting: str, leased: str
    ) -> bool:
        """Atomically move one delivery that is still due to ``leased`` until ``lease_until``,
        counting one attempt. False when another worker got it first."""
        res = await self.s.execute(
            update(BackchannelDelivery)
            .where(BackchannelDelivery.id == delivery_id, self._due(now, waiting, leased))
            .values(status=leased, locked_until=lease_until, attempts=BackchannelDelivery.attempts + 1)
        )
        return rowcount(res) == 1

    async def get(self, delivery_id: str) -> BackchannelDelivery | None:
        return await self.s.get(BackchannelDelivery, delivery_id)

    async def counts(self) -> dict[str, int]:
        """Deliveries per status."""
        stmt = select(BackchannelDelivery.status, func.count()).group_by(BackchannelDelivery.status)
        return {status: int(n) for status, n in await self.s.execute(stmt)}

    async def latest(self, limit: int, status: str | None = None) -> list[BackchannelDelivery]:
        """The newest deliveries (optionally of one status), newest first."""
        stmt = (
            select(BackchannelDelivery)
            .order_by(BackchannelDelivery.created_at.desc(), BackchannelDelivery.id)
            .limit(limit)
        )
        if status:
            stmt = stmt.where(BackchannelDelivery.status == status)
        return list((await self.s.execute(stmt)).scalars())

    async def requeue(
        self, now: datetime, statuses: Sequence[str], to_status: str, delivery_id: str | None = None
    ) -> int:
        """Deliveries in one of ``statuses`` (one, or all) moved to ``to_status``, due now, with
        a fresh attempt budget. Returns how many."""
        stmt = update(BackchannelDelivery).where(BackchannelDelivery.status.in_(tuple(statuses)))
        if delivery_id is not None:
            stmt = stmt.where(BackchannelDelivery.id == delivery_id)
        res = await self.s.execute(
            stmt.values(status=to_status, attempts=0, next_attempt_at=now, locked_until=None)
        )
        return rowcount(res)

    async def purge(self, statuses: Sequence[str], before: datetime) -> int:
        """Forget deliveries in one of ``statuses`` created before ``before``."""
        res = await self.s.execute(
            delete(BackchannelDelivery).where(
                BackchannelDelivery.status.in_(tuple(statuses)), BackchannelDelivery.created_at < before
            )
        )
        return rowcount(res)
