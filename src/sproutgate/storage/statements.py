"""Core statements, run either through an AsyncSession or, on SQLite with the inline driver, on a
plain sqlite3 connection on the event loop thread (``Database.write_now``).

Hot paths written against ``Statements`` take the inline path on SQLite, where a refresh's
handful of indexed statements cost less than SQLAlchemy's session and unit of work around
them, and stay the same code on PostgreSQL. Results are plain dicts keyed by column key (or
label), with the models' types applied either way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

from sproutgate.storage import sqlite_driver

# Where a write session from ``Database.write()`` carries its database's session-end listeners
# (``AsyncSession.info``), for ``SessionStatements.session_end_listeners``.
SESSION_END_LISTENERS = "sproutgate.session_end_listeners"


class Statements(Protocol):
    async def first(self, statement: Executable, **params: Any) -> dict[str, Any] | None:
        """The first row of a SELECT as {column key: value}, or None."""
        ...

    async def run(self, statement: Executable, **params: Any) -> int:
        """Execute an INSERT, UPDATE or DELETE; how many rows it touched."""
        ...

    async def all(self, statement: Executable, **params: Any) -> list[dict[str, Any]]:
        """Every row of a SELECT, or of an INSERT/UPDATE/DELETE ... RETURNING (which it runs),
        as {column key: value}."""
        ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once, right after this transaction commits (never after a
        rollback): for waking a worker about rows it queued. ``callback`` must not raise."""
        ...

    @property
    def session_end_listeners(self) -> Sequence[Any]:
        """What the database this transaction writes tells about every session that ends in
        it (``Database.session_end_listeners``; typed by domain.sessions)."""
        ...


class SessionStatements:
    """Statements in an AsyncSession's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def first(self, statement: Executable, **params: Any) -> dict[str, Any] | None:
        row = (await self.session.execute(statement, params)).mappings().first()
        return dict(row) if row is not None else None

    async def run(self, statement: Executable, **params: Any) -> int:
        result = await self.session.execute(statement, params)
        return int(getattr(result, "rowcount", 0) or 0)

    async def all(self, statement: Executable, **params: Any) -> list[dict[str, Any]]:
        return [dict(row) for row in (await self.session.execute(statement, params)).mappings()]

    def after_commit(self, callback: Callable[[], None]) -> None:
        event.listen(self.session.sync_session, "after_commit", lambda _session: callback(), once=True)

    @property
    def session_end_listeners(self) -> Sequence[Any]:
        return tuple(self.session.info.get(SESSION_END_LISTENERS, ()))


class SqliteStatements:
    """Statements on a plain sqlite3 connection inside an inline write block; they never suspend,
    and each first makes sure nothing else in the block did (``loop_ran``), raising
    ``sqlite_driver.WriteBlockSuspended`` otherwise."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        loop_ran: sqlite_driver.LoopRanCheck,
        listeners: Sequence[Any] = (),
    ) -> None:
        self.conn = conn
        self.loop_ran = loop_ran
        self._listeners = tuple(listeners)
        # Run by ``Database.write_now`` once the block committed.
        self.committed: list[Callable[[], None]] = []

    async def first(self, statement: Executable, **params: Any) -> dict[str, Any] | None:
        self.loop_ran.check()
        return sqlite_driver.prepared(statement).first(self.conn, **params)

    async def run(self, statement: Executable, **params: Any) -> int:
        self.loop_ran.check()
        return sqlite_driver.prepared(statement).run(self.conn, **params)

    async def all(self, statement: Executable, **params: Any) -> list[dict[str, Any]]:
        self.loop_ran.check()
        return sqlite_driver.prepared(statement).mappings(self.conn, **params)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self.committed.append(callback)

    @property
    def session_end_listeners(self) -> Sequence[Any]:
        return self._listeners
